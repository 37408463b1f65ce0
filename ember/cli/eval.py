"""``ember eval CKPT``: evaluate any model ember trains, as the checkpoint says what it is.

- Image classifiers (``ember train mlp|lenet --save``, ``ember train kan --dataset --save``): loss and
  accuracy on a test split, by default that of the dataset the model was trained on.
- KAN function fits (``ember train kan --task --save``): MSE on 10,000 fresh points, drawn exactly as
  the training run drew its test points (``regression.test_points``: the run's ``--seed``, which
  ``ember train kan --save`` records; ``--seed`` overrides it, and checkpoints without one use 0, the
  trainer's default); with the run's seed the number equals the ``test_mse`` the run printed.
- GPT language models (``ember train gpt``; CKPT is the ``--out`` folder or its model.safetensors,
  with tokenizer.json beside it): loss, perplexity and bits per byte over every token of the
  validation split of the corpus it was trained on, or of ``--data FILE``
  (``ember.train.lm_eval.evaluate_lm``).

Anything else (a file ember did not write, a training state, a model eval does not know) is one
line naming the file and what it is, exit status 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import UsageError, UserError, non_negative_int, positive_int, print_json, say

CLASSIFIERS = ("mlp", "lenet", "kan")
KIND_NAMES = {"classifier": "an image classifier", "task": "a KAN function fit", "lm": "a GPT language model"}
# option -> the kinds of model it applies to; these options default to None so that one given to
# a model it does not apply to is reported instead of silently ignored
OPTION_KINDS = {"dataset": ("classifier",), "seed": ("task",), "data": ("lm",), "max_tokens": ("lm",),
                "batch_size": ("classifier", "lm")}
DEFAULT_BATCH = {"classifier": 1000, "lm": 32}  # images, or windows of block_size tokens


def add_parser(sub) -> None:
    from ..data import IMAGE_DATASETS

    p = sub.add_parser("eval", help="evaluate a checkpoint",
                       description="Evaluate a saved model: a classifier on a test split, a KAN function fit on "
                                   "fresh points, a GPT on held-out text.")
    p.add_argument("checkpoint", metavar="CKPT",
                   help="a .safetensors file written by `ember train ... --save`, or the --out folder of "
                        "`ember train gpt` (or its model.safetensors)")
    p.add_argument("--dataset", choices=IMAGE_DATASETS, default=None,
                   help="classifiers: image dataset (default: the one it was trained on, else mnist)")
    p.add_argument("--data-dir", default=None,
                   help="folder holding the datasets (mnist/, tinyshakespeare/, ...; also: $EMBER_DATA)")
    p.add_argument("--no-download", action="store_true", help="fail instead of downloading missing files")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="images per batch (default 1000), or GPT windows per batch (default 32)")
    p.add_argument("--seed", type=non_negative_int, default=None,
                   help="KAN tasks: the training run's --seed, which picks the test points (default: the seed "
                        "the checkpoint records, else 0)")
    p.add_argument("--data", metavar="FILE", default=None,
                   help="GPT: evaluate on all of this text file (default: the validation split of the "
                        "corpus the model was trained on)")
    p.add_argument("--max-tokens", type=positive_int, default=None,
                   help="GPT: predict only the first N tokens (for speed)")
    p.add_argument("--no-verify", action="store_true",
                   help="load without checking the weights against the content hashes stored at save time")
    p.set_defaults(run=run)


@dataclass
class Loaded:
    """A checkpoint read for evaluation: which kind of model, the model, its metadata and (GPT) tokenizer."""

    path: Path  # the model file (model.safetensors for a GPT folder)
    kind: str  # 'classifier', 'task' or 'lm'
    model: object
    meta: dict
    tokenizer: object = None


def run(args) -> int:
    loaded = load(args.checkpoint, verify=not args.no_verify)
    check_options(args, loaded)
    return EVALUATORS[loaded.kind](args, loaded)


# ----------------------------------------------------------------------------- loading


def load(checkpoint: str, verify: bool = True) -> Loaded:
    """The one place eval reads the checkpoint: the model, its metadata, its kind and (GPT) its tokenizer."""
    from ..io import CheckpointError, load_model

    path = model_file(Path(checkpoint))
    try:
        model, meta = load_model(path, verify)
    except CheckpointError as exc:
        raise CheckpointError(describe_foreign_file(path) or str(exc)) from None
    kind = model_kind(path, meta)
    tokenizer = tokenizer_beside(path, model) if kind == "lm" else None
    return Loaded(path, kind, model.eval(), meta, tokenizer)


def model_file(path: Path) -> Path:
    """``path``, or the model file of a GPT run folder."""
    from ..io import CheckpointError
    from ..train.lm import MODEL_FILE

    if not path.is_dir():
        return path
    if not (path / MODEL_FILE).is_file():
        raise CheckpointError(f"{path}: a folder without {MODEL_FILE}; expected a checkpoint file or the --out "
                              f"folder of `ember train gpt`")
    return path / MODEL_FILE


def describe_foreign_file(path: Path) -> str | None:
    """One line on a readable safetensors file that is not an ember model checkpoint (None for anything else)."""
    from safetensors import SafetensorError, safe_open

    from ..io.train_state import FORMAT as TRAIN_STATE_FORMAT
    from ..train.lm import MODEL_FILE

    try:
        with safe_open(str(path), framework="numpy") as f:
            fmt, n_tensors = (f.metadata() or {}).get("format"), len(f.keys())
    except (SafetensorError, OSError, ValueError):
        return None
    if fmt == "ember":
        return None
    if fmt == TRAIN_STATE_FORMAT:
        return (f"{path}: an ember training state (what `ember train gpt --resume` continues from), not a model "
                f"checkpoint; evaluate the {MODEL_FILE} beside it")
    return (f"{path}: a safetensors file of {n_tensors} tensors that ember did not write (metadata format={fmt!r}); "
            f"eval reads the checkpoints of `ember train ... --save` and `ember train gpt`")


def model_kind(path: Path, meta: dict) -> str:
    from ..io import CheckpointError

    name = meta.get("model")
    if name == "gpt":
        return "lm"
    if name == "kan" and "task" in meta["extra"]:
        return "task"
    if name in CLASSIFIERS:
        return "classifier"
    raise CheckpointError(f"{path}: an ember checkpoint of model {name!r}, which eval cannot evaluate "
                          f"(it knows {', '.join(CLASSIFIERS)} and gpt)")


def tokenizer_beside(path: Path, model):
    """The tokenizer a GPT was trained with: tokenizer.json in the checkpoint's folder, checked against the model."""
    from ..io import CheckpointError
    from ..text import load_tokenizer
    from ..train.lm import TOKENIZER_FILE

    tokenizer_path = path.parent / TOKENIZER_FILE
    if not tokenizer_path.is_file():
        raise CheckpointError(f"{path}: a gpt checkpoint without {TOKENIZER_FILE} beside it; eval needs the "
                              f"tokenizer it was trained with (the --out folder of `ember train gpt` holds both)")
    try:
        tokenizer = load_tokenizer(tokenizer_path)
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    if tokenizer.vocab_size != model.config.vocab_size:
        raise CheckpointError(f"{tokenizer_path}: {tokenizer.vocab_size} ids, but the model {path} has "
                              f"{model.config.vocab_size}")
    return tokenizer


def check_options(args, loaded: Loaded) -> None:
    for option, kinds in OPTION_KINDS.items():
        if getattr(args, option) is not None and loaded.kind not in kinds:
            flag = "--" + option.replace("_", "-")
            raise UsageError(f"{flag} does not apply to {loaded.path}, {KIND_NAMES[loaded.kind]}")


# ----------------------------------------------------------------------------- image classifiers


def eval_classifier(args, loaded: Loaded) -> int:
    from ..data import IMAGE_DATASETS, DataLoader, image_classification
    from ..train import evaluate

    extra = loaded.meta["extra"]
    trained_on = extra.get("dataset")
    dataset = args.dataset or trained_on or "mnist"
    if dataset not in IMAGE_DATASETS:
        raise UserError(f"{loaded.path}: trained on {dataset!r}, which eval cannot load; pass --dataset "
                         f"({', '.join(IMAGE_DATASETS)})")
    download = not args.no_download
    norm = extra.get("normalization")
    stats = (np.asarray(norm["mean"], np.float32), np.asarray(norm["std"], np.float32)) if norm else None
    if stats is None:  # an older or foreign checkpoint: standardise with the training split's statistics
        stats = image_classification(dataset, "train", args.data_dir, download)[1]
    test_set, _ = image_classification(dataset, "test", args.data_dir, download, stats=stats)
    check_classifier_fits(loaded, dataset, *test_set.arrays)
    loss, acc = evaluate(loaded.model, DataLoader(test_set, batch_size=args.batch_size or DEFAULT_BATCH["classifier"]))
    if trained_on and trained_on != dataset:
        say(f"note: the model was trained on {trained_on}, evaluated on {dataset}")
    name = loaded.meta["model"]
    say(f"{name} on {dataset} test: loss {loss:.4f}, accuracy {acc:.2%}")
    print_json({"event": "eval", "model": name, "dataset": dataset, "checkpoint": args.checkpoint,
                "test_loss": round(loss, 6), "test_accuracy": round(acc, 6)})
    return 0


def check_classifier_fits(loaded: Loaded, dataset: str, images: np.ndarray, labels: np.ndarray) -> None:
    """The model's input size and class count against the dataset's, before a forward pass fails deep inside."""
    name, config = loaded.meta["model"], loaded.model.config
    shape = tuple(images.shape[1:])  # (C, H, W)
    if name == "lenet":  # its 400-wide first Linear fixes the image size at 28x28
        wanted, fits = f"{config.in_channels}x28x28 images", shape == (config.in_channels, 28, 28)
        outputs = config.num_classes
    else:
        sizes = config.sizes if name == "mlp" else config.widths
        wanted, fits = f"inputs of {sizes[0]} values", math.prod(shape) == sizes[0]
        outputs = sizes[-1]
    if not fits:
        raise UserError(f"{loaded.path}: {name} takes {wanted}, but {dataset} test images are "
                         f"{'x'.join(map(str, shape))} ({math.prod(shape)} values)")
    classes = int(labels.max()) + 1 if len(labels) else 0
    if outputs < classes:
        raise UserError(f"{loaded.path}: {name} has {outputs} outputs, but {dataset} has {classes} classes")


# ----------------------------------------------------------------------------- KAN function fits


def eval_task(args, loaded: Loaded) -> int:
    from ..train.regression import TEST_POINTS, get_task, test_mse_on_fresh_points

    extra = loaded.meta["extra"]
    try:
        task = get_task(extra["task"])
    except ValueError as exc:
        raise UserError(f"{loaded.path}: a kan fitted to a task this ember does not know: {exc}") from None
    widths = loaded.model.config.widths
    if widths[0] != task.dims or widths[-1] != 1:
        raise UserError(f"{loaded.path}: task {task.name} needs widths {task.dims},...,1, but the kan has "
                         f"{','.join(map(str, widths))}")
    seed = args.seed if args.seed is not None else int(extra.get("seed", 0))
    test_mse = test_mse_on_fresh_points(loaded.model, task, seed)
    say(f"kan on task {task.name} ({task.formula}), seed {seed}: test mse on {TEST_POINTS:,} fresh points "
        f"{test_mse:.3e}")
    recorded = extra.get("test_mse")
    if recorded is not None and recorded != test_mse:
        saved = f"{extra['seed']}, as the checkpoint records" if "seed" in extra else "not in the checkpoint"
        say(f"note: the training run reported test mse {recorded:.3e}; its test points depend on its --seed "
            f"({saved}): pass the same --seed to reproduce it")
    print_json({"event": "eval", "model": "kan", "task": task.name, "checkpoint": args.checkpoint, "seed": seed,
                "points": TEST_POINTS, "test_mse": test_mse})
    return 0


# ----------------------------------------------------------------------------- language models


def eval_lm(args, loaded: Loaded) -> int:
    from ..train.lm_eval import evaluate_lm

    ids, data, split = lm_tokens(args, loaded)
    try:
        result = evaluate_lm(loaded.model, loaded.tokenizer, ids, batch_size=args.batch_size or DEFAULT_BATCH["lm"],
                             max_tokens=args.max_tokens)
    except ValueError as exc:
        raise UserError(f"{data}: {exc}") from None
    where = f"{data} (all of it)" if split == "all" else f"the validation split of {data}"
    first = "first " if args.max_tokens else ""
    say(f"gpt on {where}: {first}{result.tokens:,} tokens ({result.bytes:,} bytes): loss {result.loss:.4f} "
        f"nats/token, perplexity {result.perplexity:.3f}, {result.bits_per_byte:.4f} bits/byte")
    print_json({"event": "eval", "model": "gpt", "checkpoint": args.checkpoint, "data": data, "split": split,
                **result.as_dict()})
    return 0


def lm_tokens(args, loaded: Loaded) -> tuple[np.ndarray, str, str]:
    """(token ids, what they are, 'val' or 'all'): ``--data FILE``, else the training corpus's validation split."""
    from ..data import DatasetError
    from ..train.lm_eval import file_tokens, validation_tokens

    if args.data:
        try:
            return file_tokens(args.data, loaded.tokenizer), args.data, "all"
        except ValueError as exc:
            raise UserError(str(exc)) from None
    spec = loaded.meta["extra"].get("data")
    if not spec:
        raise UserError(f"{loaded.path}: the checkpoint does not record the corpus it was trained on; "
                         f"pass --data FILE")
    try:
        return validation_tokens(spec, loaded.tokenizer, args.data_dir, not args.no_download), spec, "val"
    except DatasetError as exc:
        raise DatasetError(f"{exc}\n(the corpus {loaded.path} was trained on; --data FILE evaluates another text)") \
            from None
    except ValueError as exc:  # the corpus changed since training: text the saved tokenizer cannot encode
        raise UserError(f"{spec}: {exc}") from None


EVALUATORS = {"classifier": eval_classifier, "task": eval_task, "lm": eval_lm}
