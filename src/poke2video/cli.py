"""The `poke2video` command line: parse arguments, call one stage, turn UserError into one stderr line."""
from __future__ import annotations

import argparse
import os
import sys

from poke2video import __version__
from poke2video.cli_types import (coordinate, non_negative_int, nonempty_path, port_number, positive_int, seed_number,
                                  shard_spec)
from poke2video.config import FLOW_MASKS
from poke2video.errors import UserError, print_line

TRACKERS = ["farneback-fine", "dis-fine", "dis-full", "dis"]  # data/flow.py ESTIMATORS, the metrics' default first
# Commands that write --out, and whether it is a folder: checked before any work (fsutil.check_output).
OUT_IS_FOLDER = {"demo": True, "simulate": True, "prepare": True, "merge": True, "train": True, "evaluate": True,
                 "poke": False, "correlate": False}
# Options naming a file to read: a FIFO, folder or device there is refused before anything opens it.
INPUT_FILES = ("checkpoint", "image", "vgg_weights", "vgg16_weights", "alexnet_weights", "lpips_vgg_heads",
               "lpips_alex_heads", "i3d_weights")


class _Parser(argparse.ArgumentParser):
    """argparse with the product's error style: one line on stderr (no usage block), exit status 2.

    Subcommand parsers are made from the same class, so `poke2video poke --source x 1 ...` says
    `poke2video poke: error: argument --source: not a number: 'x' (see poke2video poke --help)`."""

    def error(self, message: str):
        print_line(f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)")
        self.exit(2)


def _add_checkpoint(p) -> None:
    p.add_argument("--checkpoint", default=None,
                   help="model.safetensors, or a bundled model: default (the default) or from-video")


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="poke a few PokeSim scenes with the bundled model",
                       description="Render a few PokeSim scenes, poke them with the bundled model and "
                                   "write videos and a contact sheet. Needs no data and no download.")
    p.add_argument("--out", type=nonempty_path, default="demo_out", help="output folder (default: demo_out)")
    _add_checkpoint(p)
    p.set_defaults(func=_cmd_demo)


def _add_simulate(sub) -> None:
    p = sub.add_parser("simulate", help="generate a PokeSim dataset with exact ground truth",
                       description="Render procedural articulated objects being poked, in the same store "
                                   "format as `prepare`, with ground-truth flow, masks and poke targets.")
    p.add_argument("--out", type=nonempty_path, required=True, help="dataset directory to create")
    p.add_argument("--clips", type=positive_int, required=True, help="number of clips")
    p.add_argument("--res", type=positive_int, default=64, help="resolution in pixels (64 or 128)")
    p.add_argument("--seed", type=seed_number, default=0, help="random seed (same seed, same bytes)")
    p.add_argument("--kind", choices=["plants", "figures", "mixed"], default="mixed")
    p.add_argument("--workers", type=positive_int, default=1, help="parallel processes")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset at --out")
    p.add_argument("--sway", type=float, default=0.0,
                   help="ambient sway of every joint in radians, 0 to 0.1 (default 0: only the poke moves things)")
    p.add_argument("--procedural", action="store_true",
                   help="train-split objects of made-up species, one per clip: random build, stiffness and colours "
                        "(test and test_unseen keep the named species)")
    p.add_argument("--as-videos", action="store_true",
                   help="write the train split's clips as plain .mp4 files in --out (no ground truth, no store): "
                        "footage to `prepare` as a user's own videos would be")
    p.add_argument("--frames-per-step", type=positive_int, default=1, metavar="K",
                   help="with --as-videos: K video frames per simulator frame step, at K times the frame rate "
                        "(1, 2, 4 or 8; default 1); prepare them with --stride K --flow-every-frame")
    p.add_argument("--chunk-clips", type=positive_int, default=100, help="clips per store video (default 100)")
    p.add_argument("--max-pokes", type=positive_int, default=1, metavar="K",
                   help="object clips push 1..K points on different segments at once (default 1)")
    p.add_argument("--max-pins", type=non_negative_int, default=0, metavar="P",
                   help="object clips hold 0..P points still: a pinned segment's path from the root is locked (default 0)")
    p.set_defaults(func=_cmd_simulate)


def _add_prepare(sub) -> None:
    p = sub.add_parser("prepare", help="turn videos into a training-ready dataset store",
                       description="Read videos (mp4/avi/mkv/webm or folders of numbered images), resize and "
                                   "centre-crop them, compute optical flow, and write a dataset store.")
    p.add_argument("inputs", nargs="+", metavar="VIDEO_OR_DIR", help="video files or directories")
    p.add_argument("--out", type=nonempty_path, required=True, help="dataset directory to create")
    layouts = ["generic", "plants", "iper", "taichi", "h36m"]
    p.add_argument("--layout", default="generic", choices=layouts,
                   help="where the videos lie and how they are split: generic (any videos, a seeded 80/20 split) "
                        "or a paper dataset as downloaded (default: generic)")
    p.add_argument("--preset", dest="layout", choices=layouts, default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)  # the option's former name, still accepted
    p.add_argument("--res", type=positive_int, default=64, help="square resolution in pixels (default 64)")
    p.add_argument("--stride", type=positive_int, default=None,
                   help="keep every k-th frame (default: the layout's)")
    p.add_argument("--clip-length", type=positive_int, default=10, help="frames per clip after the first (T)")
    p.add_argument("--start-step", type=positive_int, default=1, help="frames between clip starts")
    p.add_argument("--seed", type=seed_number, default=0, help="seed of the generic 80/20 split")
    p.add_argument("--flow", dest="flow_method", default=None, metavar="METHOD",
                   help="optical flow estimator: dis, dis-fine, dis-full or farneback-fine (default: dis)")
    p.add_argument("--flow-scale", type=positive_int, default=None, metavar="K",
                   help="estimate the flow on frames K times the resolution, then average it down (default 2)")
    p.add_argument("--flow-mask", choices=FLOW_MASKS, default=None,
                   help="changed: no motion where two frames' colours do not change (default: none)")
    p.add_argument("--tracked-truth", nargs="?", const=TRACKERS[0], default=None, choices=TRACKERS,
                   metavar="TRACKER",
                   help="also store each clip's motion truth, tracked on the frames the flow is estimated on "
                        "(--flow-scale times the resolution; every frame with --flow-every-frame) by TRACKER "
                        f"({', '.join(TRACKERS)}; default {TRACKERS[0]}); evaluate scores motion against it "
                        "(slower)")
    p.add_argument("--flow-every-frame", action="store_true",
                   help="estimate the flow between every two consecutive frames, those --stride skips included, "
                        "and chain it over each kept step (follows fast thin parts better; slower)")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable videos and list them")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset at --out")
    p.add_argument("--shard", type=shard_spec, default=None, metavar="I/N",
                   help="prepare only the inputs at positions g (0-based, in the order prepare lists them: arguments "
                        "as given, folders in natural order) with g mod N = I, as one of N machines or processes; "
                        "join the N stores with `poke2video merge`")
    p.set_defaults(func=_cmd_prepare)


def _add_merge_verify(sub) -> None:
    p = sub.add_parser("merge", help="join the stores of `prepare --shard I/N` into one dataset",
                       description="Join the N shard stores of one `prepare --shard` run into one store, equal "
                                   "to running prepare once on all inputs (splits recomputed over all videos). "
                                   "Array files are hard-linked where possible, else copied.")
    p.add_argument("shards", nargs="+", metavar="SHARD_DIR", help="the shard stores, all N of them")
    p.add_argument("--out", type=nonempty_path, required=True, help="dataset directory to create")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset at --out")
    p.set_defaults(func=_cmd_merge)
    p = sub.add_parser("verify", help="check every array of a dataset store against its sha256",
                       description="Check a store like train and evaluate do (manifest, files, sizes, shapes), "
                                   "then read every array and compare its sha256 with the manifest.")
    p.add_argument("data", metavar="DATA", help="dataset directory")
    p.set_defaults(func=_cmd_verify)


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model on a dataset store",
                       description="Train the poke-to-video model. Kill it at any time; --resume continues.")
    p.add_argument("--data", required=True, help="dataset directory (from prepare or simulate)")
    p.add_argument("--out", type=nonempty_path, required=True, help="run directory (weights, logs, resume state)")
    p.add_argument("--preset", default="cpu-64",
                   help="cpu-64, cpu-64-pins, cpu-64-video, paper-64, paper-128 or a preset YAML file (default "
                        "cpu-64; a resumed run keeps its own)")
    p.add_argument("--steps", type=positive_int,
                   help="train until this step (counted across resumes; default: the preset's train.steps)")
    p.add_argument("--max-minutes", type=float,
                   help="stop this invocation after this many minutes if the run has not reached its last step "
                        "by then (continue it with --resume)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out where it stopped (with no run there yet, start it: a command "
                        "that torchrun --max-restarts can repeat)")
    p.add_argument("--seed", type=seed_number, default=0, help="seed of weights, data order and pokes (default 0)")
    p.add_argument("--val-data", default=None, metavar="DIR",
                   help="a separate store to validate on instead of --data's test clips (e.g. simulate --seed 1); "
                        "the weights that score best there are kept as best.safetensors")
    p.add_argument("--vgg-weights", default=None, metavar="PATH",
                   help="VGG19 weights file for the perceptual loss of the paper presets")
    p.add_argument("--workers", type=non_negative_int, default=None,
                   help="processes loading batches, per training process (default: 0 on a CPU, up to 4 on a "
                        "GPU); any number gives the same training, bit for bit")
    p.add_argument("--in-memory", action="store_true",
                   help="read the training clips into RAM first (about 0.35 MB per 64 px PokeSim clip): for a "
                        "machine whose page cache does not keep the store, where training waits on the disk")
    p.add_argument("--init", default=None, metavar="WEIGHTS",
                   help="start from these weights instead of random ones: a .safetensors file or a bundled "
                        "model (default, from-video) with the preset's network; the optimizer and the "
                        "learning-rate schedule start afresh at step 0")
    p.set_defaults(func=_cmd_train)


def _add_poke(sub) -> None:
    p = sub.add_parser("poke", help="animate an image from one poke or several",
                       description="Move the pixel at --source towards --target (or every --poke at once), "
                                   "hold every --pin still, and write the response video.")
    _add_checkpoint(p)
    p.add_argument("--image", required=True, help="input image (png, jpg, ...)")
    p.add_argument("--source", nargs=2, type=coordinate, metavar=("X", "Y"),
                   help="pixel to poke, in the image's pixels (x right, y down)")
    p.add_argument("--target", nargs=2, type=coordinate, metavar=("X", "Y"), help="where that pixel should end up")
    p.add_argument("--poke", nargs=4, type=coordinate, action="append", metavar=("X", "Y", "X2", "Y2"),
                   help="a poke from (X, Y) to (X2, Y2); repeat for several at once (instead of --source/--target)")
    p.add_argument("--pin", nargs=2, type=coordinate, action="append", metavar=("X", "Y"),
                   help="a pixel to hold still; repeat for several (needs a flow model)")
    p.add_argument("--out", type=nonempty_path, required=True, help="output video: .mp4 or .gif")
    p.add_argument("--overlay", action="store_true", help="draw the pokes' arrows and target dots, and the pins")
    p.set_defaults(func=_cmd_poke)


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="score a model and baselines on a dataset split",
                       description="Run the model, the baselines and (on PokeSim) the real clip over a split's "
                                   "clips with one scoring code; write metrics.json, report.md, plots and "
                                   "example sheets to --out.")
    _add_checkpoint(p)
    p.add_argument("--data", required=True, help="dataset directory (from prepare or simulate)")
    p.add_argument("--split", default="test", help="split to score (default test; PokeSim also has test_unseen)")
    p.add_argument("--baselines", default="static,warp",
                   help="comma-separated: static, warp, oracle, oracle-true-fill, oracle-poked-part, or none")
    p.add_argument("--limit", type=positive_int, default=None, help="score only the first N clips")
    p.add_argument("--out", type=nonempty_path, required=True, help="report folder to create")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report folder")
    p.add_argument("--structure-clips", type=non_negative_int, default=4,
                   help="PokeSim object pokes that get a correlation map scored against the kinematic tree (0: off)")
    p.add_argument("--structure-pokes", type=positive_int, default=16, help="random pokes per correlation map")
    p.add_argument("--examples", type=non_negative_int, default=4, help="clips on the example sheet")
    p.add_argument("--no-motion", action="store_true",
                   help="skip the motion metrics (they track every scored pixel, and the real clip on a store "
                        "without ground truth)")
    p.add_argument("--tracker", choices=TRACKERS, default=TRACKERS[0],
                   help="optical flow that tracks pixels for the endpoint, motion and structure metrics "
                        f"(default {TRACKERS[0]})")
    p.add_argument("--lpips", choices=["vgg", "alex", "off"], default="vgg", help="LPIPS variant (default vgg)")
    p.add_argument("--vgg16-weights", default=None, metavar="PATH", help="torchvision VGG16 file (LPIPS vgg)")
    p.add_argument("--alexnet-weights", default=None, metavar="PATH", help="torchvision AlexNet file (LPIPS alex)")
    p.add_argument("--lpips-vgg-heads", default=None, metavar="PATH", help="lpips v0.1 vgg.pth linear heads")
    p.add_argument("--lpips-alex-heads", default=None, metavar="PATH", help="lpips v0.1 alex.pth linear heads")
    p.add_argument("--i3d-weights", default=None, metavar="PATH", help="i3d_torchscript.pt for FVD")
    p.add_argument("--no-fvd", action="store_true", help="skip FVD")
    p.add_argument("--seed", type=seed_number, default=0,
                   help="seed of the correlation pokes and the bootstrap")
    p.set_defaults(func=_cmd_evaluate)


def _add_correlate(sub) -> None:
    p = sub.add_parser("correlate", help="map which pixels move with a poked location",
                       description="Poke --at with N random pokes, track every pixel through each video and map "
                                   "the inverse variance of its distance to the poke vector (docs/architecture.md).")
    _add_checkpoint(p)
    p.add_argument("--image", required=True, help="input image (png, jpg, ...)")
    p.add_argument("--at", nargs=2, type=coordinate, required=True, metavar=("X", "Y"),
                   help="pixel to poke, in the image's pixels (x right, y down)")
    p.add_argument("--out", type=nonempty_path, required=True, help="output map: .png")
    p.add_argument("--pokes", type=positive_int, default=16, help="random pokes (default 16)")
    p.add_argument("--seed", type=seed_number, default=0, help="seed of the random pokes")
    p.set_defaults(func=_cmd_correlate)


def _add_app(sub) -> None:
    p = sub.add_parser("app", help="poke images in your browser",
                       description="Serve the interactive web app: upload an image or pick an example scene, "
                                   "press and drag, and watch the response. JSON API at /docs.")
    _add_checkpoint(p)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=port_number, default=7860, help="port, 1 to 65535 (default 7860)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads for inference (default 1)")
    p.set_defaults(func=_cmd_app)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="poke2video", description="Poke one pixel of a still image and get a video of how the object responds.")
    parser.add_argument("--version", action="version", version=f"poke2video {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (_add_demo, _add_simulate, _add_prepare, _add_merge_verify, _add_train, _add_poke, _add_evaluate,
                _add_correlate, _add_app):
        add(sub)
    return parser


# Handlers: import the stage lazily (keeps `--help` fast) and pass explicit arguments.

def _cmd_demo(args) -> None:
    from poke2video.demo import run_demo

    run_demo(out=args.out, checkpoint=args.checkpoint)


def _cmd_simulate(args) -> None:
    from poke2video.sim.generate import simulate_dataset

    if args.as_videos:
        from poke2video.sim.videos import simulate_videos

        if args.max_pokes != 1 or args.max_pins != 0:
            raise UserError("--max-pokes and --max-pins need a store (plain videos carry no pokes); drop --as-videos")
        simulate_videos(args.out, clips=args.clips, resolution=args.res, seed=args.seed, kind=args.kind,
                        procedural=args.procedural, frames_per_step=args.frames_per_step)
        return
    if args.frames_per_step != 1:
        raise UserError("--frames-per-step draws frames of plain videos; add --as-videos")
    simulate_dataset(out=args.out, clips=args.clips, resolution=args.res, seed=args.seed, kind=args.kind,
                     workers=args.workers, overwrite=args.overwrite, sway=args.sway, chunk_clips=args.chunk_clips,
                     procedural=args.procedural, max_pokes=args.max_pokes, max_pins=args.max_pins)


def _cmd_prepare(args) -> None:
    from poke2video.data.prepare import prepare_dataset

    prepare_dataset(inputs=args.inputs, out=args.out, layout=args.layout, resolution=args.res,
                    stride=args.stride, clip_length=args.clip_length, start_step=args.start_step,
                    seed=args.seed, skip_bad=args.skip_bad, overwrite=args.overwrite, shard=args.shard,
                    flow_method=args.flow_method, flow_scale=args.flow_scale,
                    flow_mask=args.flow_mask, tracked_truth=args.tracked_truth,
                    flow_every_frame=args.flow_every_frame)


def _cmd_merge(args) -> None:
    from poke2video.data.shards import merge_shards

    merge_shards(args.shards, out=args.out, overwrite=args.overwrite)


def _cmd_verify(args) -> None:
    from poke2video.data.store import verify_store

    verify_store(args.data)


def _cmd_train(args) -> None:
    from poke2video.train.loop import train_run

    train_run(data=args.data, out=args.out, preset=args.preset, steps=args.steps,
              max_minutes=args.max_minutes, resume=args.resume, seed=args.seed, vgg_weights=args.vgg_weights,
              workers=args.workers, val_data=args.val_data, in_memory=args.in_memory, init=args.init)


def _cmd_poke(args) -> None:
    from poke2video.poker import poke_to_file

    if (args.poke and (args.source or args.target)) or not (args.poke or (args.source and args.target)):
        raise UserError("give --source and --target for one poke, or --poke X Y X2 Y2 for each of several "
                        "(not both)")
    poke_to_file(checkpoint=args.checkpoint, image=args.image, source=args.source and tuple(args.source),
                 target=args.target and tuple(args.target), out=args.out, overlay=args.overlay,
                 pokes=args.poke and [(tuple(p[:2]), tuple(p[2:])) for p in args.poke],
                 pins=args.pin and [tuple(p) for p in args.pin])


def _cmd_evaluate(args) -> None:
    from poke2video.evaluate.evaluator import EvalOptions, evaluate_to_dir

    alex = args.lpips == "alex"
    options = EvalOptions(limit=args.limit, motion=not args.no_motion, structure_clips=args.structure_clips,
                          structure_pokes=args.structure_pokes, lpips=args.lpips,
                          lpips_backbone=args.alexnet_weights if alex else args.vgg16_weights,
                          lpips_heads=args.lpips_alex_heads if alex else args.lpips_vgg_heads,
                          fvd=not args.no_fvd, i3d_weights=args.i3d_weights, example_clips=args.examples,
                          seed=args.seed, tracker=args.tracker)
    evaluate_to_dir(checkpoint=args.checkpoint, data=args.data, out=args.out, split=args.split,
                    baselines=args.baselines, overwrite=args.overwrite, options=options,
                    command=" ".join(["poke2video", *args.argv]))


def _cmd_correlate(args) -> None:
    from poke2video.evaluate.correlate import correlate_to_file

    correlate_to_file(checkpoint=args.checkpoint, image=args.image, at=tuple(args.at), out=args.out,
                      pokes=args.pokes, seed=args.seed)


def _cmd_app(args) -> None:
    from poke2video.app.server import serve

    serve(checkpoint=args.checkpoint, host=args.host, port=args.port, threads=args.threads)


def _check_paths(args) -> None:
    """Refuse, before any work, an input option naming something other than a file, and an --out this
    process cannot write (fsutil.check_output)."""
    from poke2video.fsutil import check_output, special_file_kind

    for name in INPUT_FILES:
        value = getattr(args, name, None)
        kind = special_file_kind(value) if value else None
        if kind is not None:
            raise UserError(f"--{name.replace('_', '-')} {value}: {kind}, not a file")
    if args.command in OUT_IS_FOLDER:
        check_output(args.out, folder=OUT_IS_FOLDER[args.command])


def main(argv: list[str] | None = None) -> int:
    # PyTorch's OpenMP workers spin while they wait; on a small or shared CPU that slows a small model down
    # many times over. Passive waiting costs little when the machine is idle.
    # Set before torch is imported (the handlers import it); a user's own setting wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        _check_paths(args)
        args.func(args)
    except UserError as exc:
        print_line(f"poke2video {args.command}: error: {exc}")
        return 2
    except OSError as exc:                      # the disk or the OS refused a file mid-way: still one line
        from poke2video.fsutil import os_error_line

        print_line(f"poke2video {args.command}: error: {os_error_line(exc)}")
        return 2
    except KeyboardInterrupt:
        print_line(f"poke2video {args.command}: interrupted")
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
