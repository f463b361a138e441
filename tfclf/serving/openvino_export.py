"""`tfclf export --format openvino`: one OpenVINO model from raw text to what the SavedModel
answers (probabilities and label(s), or a regression's score), in TF Serving's version-folder
layout, which OpenVINO Model Server serves through the TF Serving and KServe APIs:

    saved_models/NAME/VERSION/model.xml, model.bin
    ovms --model_name NAME --model_path saved_models/NAME --port 9000 --rest_port 8000 \
         --plugin_config '{"INFERENCE_PRECISION_HINT": "f32"}'

The tokenizer is the run's own vocabulary and casing, made into Hugging Face's tokenizer
(transformers' tokenizer classes: no PyTorch) and converted to OpenVINO ops by openvino-tokenizers;
tests/test_tokenizer_families.py holds its ids to Hugging Face's. The encoder and head come from the
classifier's token-ids function, converted as serving/openvino.py converts them. The weights are
float32 either way; the precision is a compile setting, which the model records (rt_info
tfclf/precision_hint) and `compile_export` and the server's --plugin_config apply: OpenVINO takes
bf16 by itself on CPUs that have it, so a float32 export must say f32.
"""
from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import numpy as np

from tfclf import tasks
from tfclf.errors import TfclfError, option
from tfclf.serving import openvino
from tfclf.storage.atomic import replace_folder

HINTS = {"float32": "f32", "bfloat16": "bf16"}  # export precision -> OpenVINO's inference precision hint


def export_openvino(classifier, base: str | Path, version: int | None = None, precision: str = "float32") -> Path:
    """Write a trained one-stage TextClassifier to `base/VERSION/model.xml` (and .bin) atomically,
    and return the version's folder."""
    from tfclf.serving.export import version_folder

    if precision not in HINTS:
        raise TfclfError(f"{option('precision')} for an OpenVINO export is one of {', '.join(HINTS)}, got {precision!r}")
    classifier.require_trained()
    _check(classifier.config, classifier.reader.two_stages)
    target = version_folder(base, version)
    model = text_model(classifier, HINTS[precision])
    import openvino as ov

    return replace_folder(target, lambda folder: ov.save_model(model, str(folder / "model.xml"), compress_to_fp16=False))


def _check(config, two_stages: bool) -> None:
    if not openvino.installed() or importlib.util.find_spec("openvino_tokenizers") is None \
            or importlib.util.find_spec("transformers") is None:
        raise TfclfError("export --format openvino needs OpenVINO, openvino-tokenizers and transformers' tokenizers: "
                         "pip install 'tfclf[openvino]'")
    if two_stages:
        raise TfclfError("export --format openvino takes one-stage runs; a hierarchical run exports as a SavedModel")
    if config.pairs:  # tests/test_tokenizer_families.py: 142 of 6,037 over-long pairs split otherwise at 16 tokens
        raise TfclfError("export --format openvino takes runs on single texts: OpenVINO's tokenizer cuts an over-long "
                         "sentence pair otherwise than Hugging Face's; a pair run exports as a SavedModel, or "
                         "predicts on engine 'openvino' from Python and the CLI")
    if config.truncation != "head":
        raise TfclfError(f"export --format openvino keeps a text's first tokens, as Hugging Face's tokenizer does; "
                         f"this run was trained with {option('truncation')} {config.truncation}")


def text_model(classifier, hint: str = "f32"):
    """The openvino.Model: `text` strings in, the SavedModel's outputs out."""
    import openvino as ov
    import tensorflow as tf

    config, model = classifier.config, classifier.model.in_precision("float32")
    classes = tf.constant(list(classifier.labels.classes))
    thresholds = tf.constant(np.asarray(classifier.thresholds, np.float32))

    def outputs(logits):  # OpenVINO's CPU plugin selects no strings: a multi-label model names its labels in
        found = tasks.serving_outputs(config.task, logits, classes, thresholds)  # rt_info, beside `decisions`
        return {k: v for k, v in found.items() if k != "labels"}

    ids_model = openvino.convert(model, outputs)
    tokenizer = tokenizer_model(classifier.tokenizer.spec, config.max_length, False)
    for name in model.input_names:  # the tokenizer's outputs feed the model's inputs of the same name
        for target in ids_model.input(name).get_target_inputs():
            target.replace_source_output(tokenizer.output(name).get_node().input_value(0))
    joined = ov.Model(ids_model.outputs, tokenizer.get_sinks() + ids_model.get_sinks(),
                      [p.get_node() for p in tokenizer.inputs], "tfclf")
    (text,) = joined.get_parameters()
    text.output(0).set_names({"text"})  # the SavedModel's input name: the same request body serves both
    text.set_friendly_name("text")
    joined.set_rt_info(hint, ["tfclf", "precision_hint"])
    joined.set_rt_info(config.task, ["tfclf", "task"])
    joined.set_rt_info(",".join(classifier.labels.classes), ["tfclf", "classes"])
    return joined


def tokenizer_model(spec, max_length: int, pairs: bool):
    """The WordPiece tokenizer of `spec` as OpenVINO ops: strings in, int32 ids, token types and
    mask out, truncated to `max_length` as Hugging Face truncates (pairs: longest first)."""
    import openvino as ov
    from openvino_tokenizers import convert_tokenizer
    from openvino_tokenizers.hf_parser import TransformersTokenizerPipelineParser as Parser
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory(prefix="tfclf-tokenizer-") as folder:
        spec.save(folder)
        hugging_face = AutoTokenizer.from_pretrained(folder, model_max_length=max_length)
    theirs = Parser.normalizers_map["BertNormalizer"]
    Parser.normalizers_map["BertNormalizer"] = _bert_normalizer
    try:
        return convert_tokenizer(hugging_face, tokenizer_output_type=ov.Type.i32, max_length=max_length,
                                 truncation=True, number_of_inputs=2 if pairs else 1)
    finally:
        Parser.normalizers_map["BertNormalizer"] = theirs


# Where openvino-tokenizers' BertNormalizer departs from Hugging Face's (tokenizers' bert.rs), as
# tests/test_tokenizer_families.py found: it keeps U+FFFD, private-use and unassigned characters,
# which Hugging Face drops with the control characters; and it case-folds where Hugging Face
# lowercases, which differ on letters that are lowercase already (final sigma, sharp s, long s,
# micro sign, the Greek symbol variants, ligatures): those are set aside before the fold and put back.
_CONTROLS = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\p{Cf}\p{Co}\p{Cn}\x{FFFD}]"
_KEEP_CASE = "ςßſµϐϑϕϖϰϱϵﬀﬁﬂﬃﬄﬅﬆ"


def _bert_normalizer(settings: dict) -> list:
    from openvino_tokenizers.tokenizer_pipeline import CaseFoldStep, NormalizationStep, NormalizeUnicode
    from openvino_tokenizers.tokenizer_pipeline import RegexNormalizationStep as Re

    class Fold(NormalizationStep):  # not a CaseFoldStep: the pipeline would merge it into the NFD step, before
        def get_ov_subgraph(self, input_nodes):  # the letters set aside are
            return CaseFoldStep().get_ov_subgraph(input_nodes)

    steps = []
    if settings["clean_text"]:
        steps += [Re(regex_search_pattern=_CONTROLS, replace_term=""), Re.replace_whitespace_regex()]
    if settings["handle_chinese_chars"]:
        steps.append(Re.handle_chinese_chars_regex())
    if settings.get("strip_accents") or (settings.get("strip_accents") is None and settings["lowercase"]):
        steps += [NormalizeUnicode("NFD"), Re.strip_accents_regex()]
    if settings["lowercase"]:
        aside = {c: chr(0xF0000 + i) for i, c in enumerate(_KEEP_CASE)}  # plane 15: no case, not in a vocabulary
        steps += [Re(regex_search_pattern="\u1E9E", replace_term="ß")]  # capital sharp s lowercases to ß
        steps += [Re(regex_search_pattern=c, replace_term=p) for c, p in aside.items()]
        steps.append(Fold())
        steps += [Re(regex_search_pattern=p, replace_term=c) for c, p in aside.items()]
    return steps


def compile_export(version_folder: str | Path):
    """An exported version compiled for this CPU in the precision it was exported in."""
    import openvino as ov
    import openvino_tokenizers  # noqa: F401  (registers the tokenizer's ops with OpenVINO)

    core = ov.Core()
    model = core.read_model(str(Path(version_folder) / "model.xml"))
    hint = model.get_rt_info(["tfclf", "precision_hint"]).astype(str)
    return core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": hint})
