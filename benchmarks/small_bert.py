"""A small random BERT with MiniLM's vocabulary (2 layers, 128 wide), seeded:

    python benchmarks/small_bert.py /tmp/small-bert

The model for the streaming benchmark's 1M-row and 10k-document runs, where the point is tfclf's
memory, not the model's; and the second width of the learning-rate rule (benchmarks/defaults.py
--model /tmp/small-bert)."""
import shutil, sys
from pathlib import Path
from tfclf.models import backbones, families, weights
import tf_keras as keras
keras.utils.set_random_seed(0)
out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
src = backbones.resolve_checkpoint("minilm-l6")
for name in ("vocab.txt", "tokenizer_config.json", "tokenizer.json", "special_tokens_map.json"):
    if (src / name).exists(): shutil.copy(src / name, out / name)
config = families.read_config({"model_type": "bert", "vocab_size": 30522, "hidden_size": 128, "num_hidden_layers": 2,
                               "num_attention_heads": 2, "intermediate_size": 512, "max_position_embeddings": 512})
config.save_pretrained(out)
weights.write_safetensors(out / "model.safetensors", weights.to_hugging_face(backbones.build_backbone(config)))
print(out)
