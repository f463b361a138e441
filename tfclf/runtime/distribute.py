"""Where training runs: the tf.distribute strategy, and this process's part in a multi-worker job.

A multi-worker job is the same `tfclf train` command started once per worker, each with a
TF_CONFIG naming the whole cluster and its own task. Every worker reads the same data and the
same run folder (a shared file system): the chief (task `chief`, or worker 0 when the cluster
has no chief) writes the run folder; the other workers write only scratch folders, which are
removed (Keras's callbacks do the same for their checkpoints). docs/DISTRIBUTED.md shows launches.

A worker that dies makes the others fail within HEARTBEAT_SECONDS (TensorFlow's coordination
service aborts the collectives), with one line naming the lost task; starting every worker
again with the same command resumes from the last finished epoch. A worker that never comes
stops the others after JOIN_SECONDS instead of a wait without end.
"""
from __future__ import annotations

import dataclasses
import faulthandler
import json
import os
import re
import sys

from tfclf.errors import TfclfError, option

# A worker silent for HEARTBEAT_SECONDS is lost (TensorFlow's coordination service); the job
# waits JOIN_SECONDS for every worker to start, e.g. while a scheduler places them.
HEARTBEAT_SECONDS = int(os.environ.get("TFCLF_HEARTBEAT_SECONDS", "10"))
JOIN_SECONDS = int(os.environ.get("TFCLF_JOIN_SECONDS", "600"))

_made: dict = {}  # name -> strategy: one per process (collectives are configured once, at start-up)


class ClusterError(TfclfError):
    """A multi-worker job lost a peer or cannot form: not the user's input, so exit status 1."""

    exit_code = 1


@dataclasses.dataclass(frozen=True)
class Task:
    type: str
    index: int
    workers: int  # chief and workers
    has_chief: bool = False  # a cluster without a `chief` task has worker 0 as its chief

    @property
    def chief(self) -> bool:
        return self.type == "chief" or (self.type == "worker" and self.index == 0 and not self.has_chief)

    @property
    def name(self) -> str:
        return f"{self.type} {self.index}"


def task() -> Task | None:
    """This process's task in TF_CONFIG, or None without TF_CONFIG."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return None
    try:
        spec = json.loads(raw)
        cluster, mine = spec["cluster"], spec["task"]
        kind, index = str(mine["type"]), int(mine["index"])
        members = {k: list(v) for k, v in cluster.items() if k in ("chief", "worker")}
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise TfclfError(f"TF_CONFIG: expected JSON like {{\"cluster\": {{\"worker\": [\"host:port\", ...]}}, "
                         f"\"task\": {{\"type\": \"worker\", \"index\": 0}}}} ({type(err).__name__}: {err})") from None
    if kind not in members or not 0 <= index < len(members[kind]):
        raise TfclfError(f"TF_CONFIG: task {kind} {index} is not in its cluster "
                         f"({', '.join(f'{k}: {len(v)}' for k, v in members.items())})")
    return Task(kind, index, sum(map(len, members.values())), has_chief=bool(members.get("chief")))


def is_chief(strategy: str) -> bool:
    """Whether this process writes the run folder: always, except on the non-chief workers of a
    multi-worker job."""
    if strategy != "multiworker":
        return True
    found = task()
    return found is None or found.chief


def require(strategy: str) -> None:
    """Checks made before TensorFlow is imported: multiworker needs a TF_CONFIG naming this task."""
    if strategy == "multiworker" and task() is None:
        raise TfclfError(f"{option('strategy')} multiworker needs TF_CONFIG (the cluster and this worker's task; "
                         f"see docs/DISTRIBUTED.md); on one host use {option('strategy')} default or mirrored")


def make_strategy(name: str = "default"):
    """default: one device; mirrored: every local GPU (or CPU); multiworker: the cluster in
    TF_CONFIG; tpu: the TPU of this host or of TPU_NAME. Made once per process: a multi-worker
    strategy must exist before TensorFlow runs anything, so TextClassifier.from_pretrained makes it."""
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name not in _made:
        if name == "mirrored":
            _made[name] = tf.distribute.MirroredStrategy()
        elif name == "multiworker":
            _made[name] = _multiworker()
        elif name == "tpu":
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            _made[name] = tf.distribute.TPUStrategy(resolver)
        else:
            raise ValueError(f"unknown strategy {name!r}")
    return _made[name]


def _multiworker():
    import tensorflow as tf

    require("multiworker")
    here = task()
    print(f"tfclf: {here.name} of a {here.workers}-worker job: waiting for every worker in TF_CONFIG "
          f"(exit 1 after {JOIN_SECONDS} s, TFCLF_JOIN_SECONDS)", file=sys.stderr, flush=True)
    # TensorFlow waits up to an hour for the workers, inside one C++ call that holds the
    # interpreter (neither its register timeout nor a Python thread can end it); faulthandler's
    # C watchdog can: it exits with status 1 (its traceback goes to /dev/null)
    with open(os.devnull, "w") as devnull:
        faulthandler.dump_traceback_later(JOIN_SECONDS, exit=True, file=devnull)
        try:
            _configure_coordination()
            # one all-reduce for all gradients of a step instead of one per variable
            packed = tf.distribute.experimental.CommunicationOptions(bytes_per_pack=64 * 2**20)
            return tf.distribute.MultiWorkerMirroredStrategy(communication_options=packed)
        except RuntimeError as err:
            if "at program startup" in str(err):
                raise TfclfError("the multiworker strategy must be made before TensorFlow runs anything: in a "
                                 "notebook, call tfclf.runtime.distribute.make_strategy('multiworker') first") from None
            raise
        finally:
            faulthandler.cancel_dump_traceback_later()


def _configure_coordination() -> None:
    """TensorFlow's coordination service as MultiWorkerMirroredStrategy would set it up (it keeps
    one set up already), with HEARTBEAT_SECONDS as the time a silent worker counts as lost."""
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.distribute.cluster_resolver import TFConfigClusterResolver
    from tensorflow.python.eager import context

    spec = TFConfigClusterResolver().cluster_spec()
    jobs = [coordination_config_pb2.CoordinatedJob(name=job, num_tasks=spec.num_tasks(job))
            for job in ("chief", "worker") if job in spec.jobs]
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=multi_worker_util.coordination_leader(spec),
        coordinated_jobs=jobs, heartbeat_timeout_in_ms=HEARTBEAT_SECONDS * 1000)


def lost_peer(err: BaseException) -> ClusterError | None:
    """The one-line error for a collective aborted because a peer went away, else None."""
    import tensorflow as tf

    if not isinstance(err, (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                            tf.errors.CancelledError, tf.errors.FailedPreconditionError)):
        return None
    message = re.sub(r"\{\{[^}]*\}\}", "", " ".join(str(getattr(err, "message", err)).split()))
    for cut in ("Additional GRPC error", " [type.googleapis.com", " The tasks have crashed"):
        message = message.split(cut)[0]
    return ClusterError(f"the multi-worker job lost a peer ({message.strip()[:300]}); start every worker again "
                        "with the same command to resume from the last finished epoch")


def shard_by_data(dataset):
    """In-memory datasets have no files to shard: every worker draws the same seeded batches and
    the strategy gives each worker its share of every global batch."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
