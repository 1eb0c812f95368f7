"""The ``lez`` command. Settings are built here, once, and passed down."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from lez.errors import LezError
from lez.settings import Settings

log = logging.getLogger("lez")


def _existing_dir(value: str) -> Path:
    path = Path(value)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{value}: not a directory")
    return path


def _existing_file(value: str) -> Path:
    path = Path(value)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{value}: no such file")
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lez", description="Low Emission Zone enforcement")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the whole pipeline on the embedded default")
    run.add_argument("--scenario", type=_existing_dir, help="push this scenario's frames")
    run.add_argument("--registry", type=_existing_file, help="registry.csv for the mock DIV")
    run.add_argument("--exemptions", type=_existing_file, help="exemptions.csv for the mock DIV")
    run.add_argument("--exit", action="store_true", help="stop after the summary")

    worker = sub.add_parser("worker", help="run one stage as a member of its consumer group")
    worker.add_argument(
        "stage", choices=["plate-reader", "fidus-adapter", "fines", "police-hotlist"]
    )
    worker.add_argument("--ground-truth", type=_existing_file, help="frames.csv (replay only)")
    worker.add_argument("--no-settle", action="store_true", help="fines: do not settle")

    serve = sub.add_parser("serve", help="run a service")
    serve.add_argument("service", choices=["div", "console"])
    serve.add_argument("--registry", type=_existing_file)
    serve.add_argument("--exemptions", type=_existing_file)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int)
    serve.add_argument("--latency", type=float, default=0.0)
    serve.add_argument("--failure-rate", type=float, default=0.0)

    cam = sub.add_parser("camera", help="push frames of a camera to lez.frames")
    cam.add_argument("--camera-id", required=True)
    cam.add_argument("source", help="JPEG directory, video file or stream URL")
    cam.add_argument("--fps", type=float, default=None, help="pace sending at this rate")
    cam.add_argument("--every-nth", type=int, default=1, help="video: keep every n-th frame")
    cam.add_argument("--quality", type=int, default=90, help="JPEG quality for video frames")

    replay = sub.add_parser("replay", help="replay a recorded scenario through the pipeline")
    replay.add_argument("scenario", type=_existing_dir)
    replay.add_argument("--report", type=Path, required=True)
    replay.add_argument("--ground-truth-plates", action="store_true")
    replay.add_argument("--timeout", type=float, default=1800.0)

    ev = sub.add_parser("eval-plates", help="measure plate reading on labelled images")
    ev.add_argument("images", type=_existing_dir)
    ev.add_argument("--labels", type=_existing_file, required=True)
    ev.add_argument("--report", type=Path, required=True)

    sub.add_parser("migrate", help="bring the database schema up to date")
    return parser


def _cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from lez import compose
    from lez.stage import StopFlag

    if not settings.kafka_bootstrap:
        raise LezError("LEZ_KAFKA_BOOTSTRAP is not set: which broker should this worker use?")
    stop = StopFlag()
    stop.install_signal_handlers()
    cameras = compose.cameras(settings)
    if args.stage == "plate-reader":
        from plate_reader.voting import vote
        from plate_reader.worker import FrameReader, PlateReaderWorker

        read: FrameReader = (
            compose.GroundTruthReader(args.ground_truth)
            if args.ground_truth
            else compose.ocr_frame_reader(settings)
        )
        PlateReaderWorker(
            settings,
            settings.kafka_bootstrap,
            read,
            vote,
            cameras=cameras,
            ground_truth=bool(args.ground_truth),
        ).run(stop)
    elif args.stage == "fidus-adapter":
        from fidus_adapter.worker import FidusAdapterWorker

        sessions = compose.sessions(settings)
        FidusAdapterWorker(
            settings,
            settings.kafka_bootstrap,
            compose.adapter(settings, sessions, actor="fidus-adapter-worker"),
            compose.rules(settings),
            cameras=cameras,
        ).run(stop)
    elif args.stage == "police-hotlist":
        from fidus_adapter.hotlist import HotlistWorker

        sessions = compose.sessions(settings)
        HotlistWorker(
            settings,
            settings.kafka_bootstrap,
            compose.adapter(
                settings, sessions, "police-hotlist-worker", authority=settings.police_authority
            ),
        ).run(stop)
    else:
        from fines.db import migrate
        from fines.service import FinesPolicy
        from fines.worker import FinesWorker

        migrate(settings.sqlalchemy_url())
        sessions = compose.sessions(settings)
        rules = compose.rules(settings)
        adapter = compose.adapter(settings, sessions, actor="fines-worker")
        FinesWorker(
            settings,
            settings.kafka_bootstrap,
            sessions,
            FinesPolicy(
                auto_issue_threshold=settings.auto_issue_threshold,
                latency_months=rules.latency_months,
            ),
            compose.day_pass_check(adapter, rules),
            settle_every_s=None if args.no_settle else 5.0,
        ).run(stop)
    return 0


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    if args.service == "div":
        from fidus_adapter.div_service import create_app as div_app
        from fidus_adapter.registry_data import load_exemptions, load_registry

        if args.registry is None:
            raise LezError("lez serve div needs --registry registry.csv")
        vehicles = load_registry(args.registry)
        exemptions = load_exemptions(args.exemptions) if args.exemptions else []
        app = div_app(vehicles, exemptions, latency_s=args.latency, failure_rate=args.failure_rate)
        uvicorn.run(app, host=args.host, port=args.port or 8100, log_level="warning")
    else:
        from fines.console import create_app as console_app
        from lez import compose

        uvicorn.run(
            console_app(compose.sessions(settings)),
            host=args.host,
            port=args.port or settings.console_port,
            log_level="warning",
        )
    return 0


def _cmd_camera(args: argparse.Namespace, settings: Settings) -> int:
    from camera_ingest.source import SequenceStore, open_source, run_camera
    from lez.bus import make_producer

    if not settings.kafka_bootstrap:
        raise LezError("LEZ_KAFKA_BOOTSTRAP is not set: which broker should the camera use?")
    producer = make_producer(settings.kafka_bootstrap)
    try:
        run_camera(
            producer,
            settings,
            args.camera_id,
            open_source(args.source, args.every_nth, args.quality),
            SequenceStore(settings.var_dir / "cameras" / f"{args.camera_id}.seq"),
            fps=args.fps,
        )
    finally:
        producer.close()
    return 0


def _cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from lez.replay import run_replay

    report = run_replay(
        args.scenario,
        args.report,
        settings,
        ground_truth_plates=args.ground_truth_plates,
        timeout_s=args.timeout,
    )
    kinds: dict[str, int] = {}
    for n in report["notices"]:
        key = f"{n['kind']}/{n['status']}"
        kinds[key] = kinds.get(key, 0) + 1
    print(
        f"replay: {report['frames']} frames, {len(report['passages'])} passages, "
        f"notices {json.dumps(kinds, sort_keys=True)}, timings {json.dumps(report['timings'])}"
    )
    print(f"report written to {args.report}")
    return 0


def _cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from plate_reader.evaluate import evaluate
    from plate_reader.reader import build_default_reader

    report = evaluate(args.images, args.labels, build_default_reader(threads=settings.ocr_threads))
    args.report.write_text(json.dumps(report, indent=1) + "\n")
    print(
        f"eval-plates: {report['correct']}/{report['images']} correct "
        f"({report['accuracy']:.1%}), ms p50 {report['ms_p50']:.0f}, p95 {report['ms_p95']:.0f}"
    )
    return 0


def _cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from lez.demo import run_embedded

    return run_embedded(settings, args.scenario, args.registry, args.exemptions, args.exit)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except Exception as exc:  # pydantic ValidationError: a bad LEZ_* variable
        print(f"lez: bad settings: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    commands: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
        "run": _cmd_run,
        "worker": _cmd_worker,
        "serve": _cmd_serve,
        "camera": _cmd_camera,
        "replay": _cmd_replay,
        "eval-plates": _cmd_eval,
        "migrate": lambda _args, s: _migrate(s),
    }
    try:
        return commands[args.command](args, settings)
    except LezError as exc:
        print(f"lez {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _migrate(settings: Settings) -> int:
    from fines.db import migrate

    migrate(settings.sqlalchemy_url())
    print(f"database at head: {settings.sqlalchemy_url().split('@')[-1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
