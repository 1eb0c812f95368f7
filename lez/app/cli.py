"""The ``lez`` command. Settings are built here, once, and passed down."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from lez.app.settings import Settings
from lez.core import names
from lez.core.errors import LezError
from lez.core.logs import configure_logging

if TYPE_CHECKING:
    from camera_ingest.edge import Sender
    from camera_ingest.source import CapturedFrame
    from camera_ingest.spool import Spool
    from lez.core.stage import StopFlag

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


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value}: not a whole number of 1 or more")
    return number


# What add_subparsers() returns; each command registers itself on it.
_Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _add_run(sub: _Subparsers) -> None:
    run = sub.add_parser("run", help="run the whole pipeline on the embedded default")
    run.add_argument("--scenario", type=_existing_dir, help="push this scenario's frames")
    run.add_argument("--registry", type=_existing_file, help="registry.csv for the mock DIV")
    run.add_argument("--exemptions", type=_existing_file, help="exemptions.csv for the mock DIV")
    run.add_argument("--exit", action="store_true", help="stop after the summary")
    run.add_argument(
        "--plate-readers",
        type=_positive_int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="plate-reader processes (default: the number of cores, here %(default)s); "
        "the topics get at least N partitions",
    )


def _add_worker(sub: _Subparsers) -> None:
    worker = sub.add_parser("worker", help="run one stage as a member of its consumer group")
    worker.add_argument("stage", choices=list(names.STAGES))
    worker.add_argument("--ground-truth", type=_existing_file, help="frames.csv (replay only)")
    worker.add_argument("--no-settle", action="store_true", help="fines: do not settle")


def _add_serve(sub: _Subparsers) -> None:
    serve = sub.add_parser("serve", help="run a service")
    serve.add_argument("service", choices=["div", "console", "ingest"])
    serve.add_argument("--registry", type=_existing_file)
    serve.add_argument("--exemptions", type=_existing_file)
    serve.add_argument(
        "--host",
        help="address to listen on (default LEZ_CONSOLE_HOST, LEZ_INGEST_HOST, LEZ_DIV_HOST: "
        "127.0.0.1; 0.0.0.0 for every interface)",
    )
    serve.add_argument(
        "--port",
        type=int,
        help="port (default LEZ_CONSOLE_PORT 8000, LEZ_INGEST_PORT 8200, LEZ_DIV_PORT 8100)",
    )
    serve.add_argument("--latency", type=float, default=0.0)
    serve.add_argument("--failure-rate", type=float, default=0.0)


def _add_camera(sub: _Subparsers) -> None:
    cam = sub.add_parser(
        "camera",
        help="an edge node: push a camera's frames to lez.frames (Kafka or the ingest gateway)",
    )
    cam.add_argument("--camera-id", required=True)
    cam.add_argument("source", nargs="?", help="JPEG directory, video file or stream URL")
    cam.add_argument("--fps", type=float, default=None, help="pace sending at this rate")
    cam.add_argument("--every-nth", type=int, default=1, help="keep every n-th frame")
    cam.add_argument("--quality", type=int, default=90, help="JPEG quality for video frames")
    cam.add_argument(
        "--registry", type=Path, help="camera registry YAML (default LEZ_CAMERAS_FILE)"
    )
    cam.add_argument(
        "--issue-key",
        action="store_true",
        help="make a new gateway API key for the camera, store its hash in the registry, "
        "print the key once and exit",
    )
    cam.add_argument("--gateway", help="ingest gateway URL (default: straight to Kafka)")
    cam.add_argument("--api-key", help="gateway API key (default LEZ_CAMERA_API_KEY)")
    cam.add_argument("--kafka-proxy", help="HTTP CONNECT proxy URL between edge and broker")
    cam.add_argument("--spool-dir", type=Path, help="default VAR/cameras/ID/spool")
    cam.add_argument("--spool-max-frames", type=int, default=10_000)
    cam.add_argument("--spool-max-mb", type=int, default=1024)
    cam.add_argument("--spool-drop", choices=["oldest", "newest"], default="oldest")
    _add_camera_capture(cam)


def _add_camera_capture(cam: argparse.ArgumentParser) -> None:
    """The edge node's motion gate, camera clock and end of source."""
    cam.add_argument(
        "--gate",
        choices=["motion", "none"],
        default="motion",
        help="motion: an idle camera sends nothing",
    )
    cam.add_argument(
        "--motion-threshold",
        type=float,
        default=0.01,
        help="fraction of the picture that must change",
    )
    cam.add_argument(
        "--motion-tail", type=int, default=2, help="frames still sent after the motion stopped"
    )
    cam.add_argument(
        "--camera-clock",
        choices=["edge", "file"],
        default="edge",
        help="JPEG directory: capture time from the edge clock or file mtimes",
    )
    cam.add_argument(
        "--recorded",
        action="store_true",
        help="push a recorded batch: SOURCE is a folder with frames.csv (the replay format: "
        "this camera's rows, with their recorded capture times) or JPEGs whose mtimes are "
        "their capture times; no motion gate; the gateway takes the times as they are (the "
        "camera needs 'recorded: true' in cameras.yaml). With --issue-key: allow the camera "
        "recorded batches",
    )
    cam.add_argument(
        "--start-time",
        type=datetime.fromisoformat,
        help="video file: capture time of its first frame (ISO 8601)",
    )
    cam.add_argument(
        "--skew-threshold",
        type=float,
        default=2.0,
        help="flag a camera clock off by more than this many seconds",
    )
    cam.add_argument(
        "--drain-timeout",
        type=float,
        default=60.0,
        help="after the source ends, wait this long for the spool to empty",
    )


def _add_replay(sub: _Subparsers) -> None:
    replay = sub.add_parser("replay", help="replay a recorded scenario through the pipeline")
    replay.add_argument("scenario", type=_existing_dir)
    replay.add_argument("--report", type=Path, required=True)
    replay.add_argument("--ground-truth-plates", action="store_true")
    replay.add_argument("--timeout", type=float, default=1800.0)


def _add_eval_plates(sub: _Subparsers) -> None:
    ev = sub.add_parser("eval-plates", help="measure plate reading on labelled images")
    ev.add_argument("images", type=_existing_dir)
    ev.add_argument("--labels", type=_existing_file, required=True)
    ev.add_argument("--report", type=Path, required=True)


def _add_chaos(sub: _Subparsers) -> None:
    chaos = sub.add_parser(
        "chaos", help="replay a scenario while killing workers and cutting the edge's link"
    )
    chaos.add_argument("scenario", type=_existing_dir)
    chaos.add_argument(
        "--ground-truth-plates",
        action="store_true",
        help="read plates from frames.csv instead of OCR (both runs)",
    )
    chaos.add_argument(
        "--outage", type=float, default=8.0, help="seconds the edge cannot reach the broker"
    )
    chaos.add_argument("--rate", type=float, default=8.0, help="frames per second at the edge")
    chaos.add_argument("--report", type=Path, help="write the comparison as JSON")
    chaos.add_argument("--timeout", type=float, default=1800.0)
    chaos.add_argument(
        "--apache-kafka",
        type=int,
        default=0,
        metavar="N",
        help="run the chaos run on an N-node Apache Kafka cluster (make kafka) and also kill "
        "the leader of a lez.frames partition mid-stream, restarting it later",
    )


def _add_bench_pipeline(sub: _Subparsers) -> None:
    bench = sub.add_parser(
        "bench-pipeline",
        help="open-loop load through the real stack: sustained frames/s, latency, lag, CPU",
    )
    bench.add_argument("scenario", type=_existing_dir)
    bench.add_argument("--rate", type=float, required=True, help="offered frames per second")
    bench.add_argument("--seconds", type=float, required=True, help="how long to offer it")
    bench.add_argument("--report", type=Path, required=True)
    bench.add_argument(
        "--plate-readers",
        type=_positive_int,
        default=os.cpu_count() or 1,
        help="plate-reader processes (default: the number of cores)",
    )
    bench.add_argument(
        "--cameras", type=_positive_int, default=180, help="virtual cameras (default 180)"
    )
    bench.add_argument(
        "--drain", type=float, default=60.0, help="after the load, wait this long for decisions"
    )
    bench.add_argument("--ground-truth-plates", action="store_true")
    bench.add_argument(
        "--find-max",
        action="store_true",
        help="then search the highest rate whose p95 latency stays <= 2 s (short probes)",
    )
    bench.add_argument("--search-seconds", type=float, default=20.0)
    bench.add_argument(
        "--brokers",
        help="run once per broker, side by side: tansu, apache-kafka, apache-kafka-tx "
        "(comma-separated; Apache Kafka from make kafka; -tx: LEZ_KAFKA_TRANSACTIONS)",
    )


def _add_users(sub: _Subparsers) -> None:
    users = sub.add_parser(
        "users",
        help="console accounts: create one (the password is asked twice on a terminal, "
        "else read from the first line of stdin)",
    )
    users.add_argument("action", choices=["create"])
    users.add_argument("username")
    users.add_argument(
        "--role", choices=["operator", "supervisor", "auditor"], default="operator"
    )


def _add_payments(sub: _Subparsers) -> None:
    payments = sub.add_parser(
        "payments",
        help="match a payment file (each line's structured reference and amount) against the "
        "notices; one line per payment: the notice it pays, or why it matches none",
    )
    payments.add_argument("action", choices=["match"])
    payments.add_argument("file", type=Path, help="payment file: one payment per line")


def _add_migrate(sub: _Subparsers) -> None:
    sub.add_parser("migrate", help="bring the database schema up to date")


def _add_topics(sub: _Subparsers) -> None:
    topics = sub.add_parser(
        "topics",
        help="create the topics on LEZ_KAFKA_BOOTSTRAP (LEZ_TOPIC_PARTITIONS partitions, "
        "LEZ_TOPIC_REPLICATION_FACTOR replicas, LEZ_TOPIC_MIN_INSYNC_REPLICAS, "
        "LEZ_TOPIC_RETENTION_MS retention); existing topics are left as they are",
    )
    topics.add_argument("action", choices=["create"])
    topics.add_argument("--partitions", type=int, help="instead of LEZ_TOPIC_PARTITIONS")
    topics.add_argument(
        "--replication-factor", type=int, help="instead of LEZ_TOPIC_REPLICATION_FACTOR"
    )
    topics.add_argument(
        "--min-insync-replicas", type=int, help="instead of LEZ_TOPIC_MIN_INSYNC_REPLICAS"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lez", description="Low Emission Zone enforcement")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run(sub)
    _add_worker(sub)
    _add_serve(sub)
    _add_camera(sub)
    _add_replay(sub)
    _add_eval_plates(sub)
    _add_chaos(sub)
    _add_migrate(sub)
    _add_users(sub)
    _add_payments(sub)
    _add_topics(sub)
    _add_bench_pipeline(sub)
    return parser


def _cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from lez.core.stage import StopFlag

    if not settings.kafka_bootstrap:
        raise LezError("LEZ_KAFKA_BOOTSTRAP is not set: which broker should this worker use?")
    stop = StopFlag()
    stop.install_signal_handlers()
    run = {
        names.PLATE_READER: _run_plate_reader,
        names.FIDUS_ADAPTER: _run_fidus_adapter,
        names.POLICE_HOTLIST: _run_police_hotlist,
    }.get(args.stage, _run_fines)
    run(args, settings, settings.kafka_bootstrap, stop)
    return 0


def _run_plate_reader(
    args: argparse.Namespace, settings: Settings, bootstrap: str, stop: StopFlag
) -> None:
    from lez.app import compose
    from lez.app.observe import observe_worker
    from plate_reader.worker import FrameReader

    read: FrameReader = (
        compose.GroundTruthReader(args.ground_truth)
        if args.ground_truth
        else compose.ocr_frame_reader(settings)
    )
    with observe_worker(settings) as obs:
        compose.plate_reader_worker(
            settings,
            bootstrap,
            read,
            ground_truth=bool(args.ground_truth),
            metrics=obs.metrics,
            health=obs.health,
        ).run(stop)


def _run_fidus_adapter(
    _args: argparse.Namespace, settings: Settings, bootstrap: str, stop: StopFlag
) -> None:
    from lez.app import compose
    from lez.app.observe import observe_worker

    sessions = compose.sessions(settings)
    with observe_worker(settings, sessions=sessions, registry=True) as obs:
        audit = compose.batching_audit_sink(settings, sessions)
        adapter = compose.adapter(settings, sessions, actor="fidus-adapter-worker", audit=audit)
        with compose.fidus_adapter_worker(
            settings,
            bootstrap,
            adapter.instrument(obs.metrics),
            compose.rules(settings),
            metrics=obs.metrics,
            health=obs.health,
            audit_batch=audit.batch,
        ) as worker:
            worker.run(stop)


def _run_police_hotlist(
    _args: argparse.Namespace, settings: Settings, bootstrap: str, stop: StopFlag
) -> None:
    from lez.app import compose
    from lez.app.observe import observe_worker

    sessions = compose.sessions(settings)
    adapter = compose.adapter(
        settings, sessions, "police-hotlist-worker", authority=settings.police_authority
    )
    with observe_worker(settings, sessions=sessions, registry=True) as obs:
        compose.hotlist_worker(
            settings,
            bootstrap,
            adapter.instrument(obs.metrics),
            metrics=obs.metrics,
            health=obs.health,
        ).run(stop)


def _run_fines(
    args: argparse.Namespace, settings: Settings, bootstrap: str, stop: StopFlag
) -> None:
    from fines.worker import INPUTS, STAGE, FinesWorker
    from lez.app import compose
    from lez.app.observe import observe_worker

    compose.migrate(settings)
    sessions = compose.sessions(settings)
    rules = compose.rules(settings)
    adapter = compose.adapter(settings, sessions, actor="fines-worker")
    consumer, producer = compose.stage_clients(settings, bootstrap, STAGE, INPUTS)
    with observe_worker(settings, sessions=sessions) as obs:
        FinesWorker(
            settings,
            consumer,
            producer,
            sessions,
            compose.fines_policy(settings, rules),
            compose.day_pass_check(adapter.instrument(obs.metrics), rules),
            settle_every_s=None if args.no_settle else 5.0,
            metrics=obs.metrics,
            health=obs.health,
            before_commit=compose.crash_after_produce(settings),
        ).run(stop)


def _metrics_token(settings: Settings) -> str | None:
    token = settings.metrics_token
    return token.get_secret_value() if token is not None else None


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from lez.app.serving import ServerLimits, serve

    limits = ServerLimits.of(settings)

    if args.service == "div":
        from lez.app.sim.div_service import create_app as div_app
        from lez.app.sim.registry_data import load_exemptions, load_registry

        if args.registry is None:
            raise LezError("lez serve div needs --registry registry.csv")
        vehicles = load_registry(args.registry)
        exemptions = load_exemptions(args.exemptions) if args.exemptions else []
        from lez.app import compose

        app = div_app(
            vehicles,
            exemptions,
            authorities=compose.div_authorities(settings),
            audit=compose.div_audit(settings),
            latency_s=args.latency,
            failure_rate=args.failure_rate,
            metrics_token=_metrics_token(settings),
        )
        serve(
            app, host=args.host or settings.div_host, port=args.port or settings.div_port,
            limits=limits,
        )
    elif args.service == "ingest":
        from camera_ingest.gateway import RegistryFile
        from camera_ingest.gateway import create_app as ingest_app
        from lez.app.metrics import Metrics

        cameras_file = args.registry or settings.cameras_file
        if cameras_file is None:
            raise LezError("lez serve ingest needs --registry cameras.yaml (or LEZ_CAMERAS_FILE)")
        serve(
            ingest_app(settings, registry=RegistryFile(cameras_file), metrics=Metrics()),
            host=args.host or settings.ingest_host,
            port=args.port or settings.ingest_port,
            limits=limits,
        )
    else:
        from lez.app import compose

        _refuse_placeholder_password(settings)
        app = compose.console_app(settings, metrics_token=_metrics_token(settings))
        _refuse_console_without_account(settings)
        host = args.host or settings.console_host
        serve(app, host=host, port=args.port or settings.console_port, limits=limits)
    return 0


def _refuse_placeholder_password(settings: Settings) -> None:
    from lez.core.secret_policy import PLACEHOLDER_MARKS

    admin = settings.console_admin_password
    given = admin.get_secret_value().casefold() if admin is not None else ""
    if any(m in given for m in PLACEHOLDER_MARKS):
        raise LezError(
            "LEZ_CONSOLE_ADMIN_PASSWORD is the example file's placeholder: put the first "
            "account's password there (12 characters at least, not easy to guess)"
        )


def _refuse_console_without_account(settings: Settings) -> None:
    """Nobody could log in to a console with no account: refuse to start, saying how."""
    from sqlalchemy import func, select

    from fines.models import ConsoleUser
    from lez.app import compose

    with compose.sessions(settings)() as session:
        accounts = session.scalar(select(func.count()).select_from(ConsoleUser))
    if not accounts:
        raise LezError(
            "the console has no account yet, so nobody could log in: set "
            "LEZ_CONSOLE_ADMIN_PASSWORD (the first account, admin, supervisor; at least 12 "
            "characters, not easy to guess) or create one with `lez users create NAME --role "
            "supervisor`"
        )


def _read_new_password() -> str:
    """The new account's password: asked twice on a terminal, else the first line of stdin."""
    import getpass

    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise LezError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\n")


def _cmd_users(args: argparse.Namespace, settings: Settings) -> int:
    """``lez users create NAME --role ROLE``: a console account (audited, like the console's)."""
    from fines.auth import create_user
    from fines.errors import AccountError
    from lez.app import compose

    compose.migrate(settings)
    password = _read_new_password()
    try:
        with compose.sessions(settings).begin() as session:
            create_user(session, args.username, password, args.role, actor="lez users create")
    except AccountError as exc:
        raise LezError(f"account {args.username!r} not created: {exc.reason}") from exc
    print(f"account {args.username} ({args.role}) created")
    return 0


def _issue_key(args: argparse.Namespace, registry_file: Path | None) -> int:
    """A new gateway API key for the camera: its hash goes to the registry (written 0600).

    A registry file that does not exist yet is made, and a camera not in it yet is added
    (its place to be filled in: ``location``, ``direction``, ``inside_zone``).
    """
    from camera_ingest.keys import hash_api_key, new_api_key
    from lez.core.cameras import Camera, CameraRegistry

    if registry_file is None:
        raise LezError("--issue-key needs --registry cameras.yaml (or LEZ_CAMERAS_FILE)")
    registry = (
        CameraRegistry.load(registry_file) if registry_file.exists() else CameraRegistry({})
    )
    camera = registry.get(args.camera_id)
    if camera is None:
        camera = Camera(camera_id=args.camera_id)
        print(
            f"camera {args.camera_id} added to {registry_file}"
            f"{' (a new file)' if not registry_file.exists() else ''}: fill in its location, "
            "direction and inside_zone (the README's camera registry format)"
        )
    key = new_api_key()
    update: dict[str, object] = {"api_key_hash": hash_api_key(key)}
    if args.recorded:
        update["recorded"] = True
    registry.with_camera(camera.model_copy(update=update)).dump(registry_file)
    print(f"API key for {args.camera_id} (shown once; only its hash is stored): {key}")
    return 0


def _camera_sender(args: argparse.Namespace, settings: Settings) -> Sender:
    from camera_ingest.edge import HttpSender, KafkaSender

    if args.gateway:
        key = settings.camera_api_key
        api_key = args.api_key or (key.get_secret_value() if key is not None else None)
        if not api_key:
            raise LezError("--gateway needs --api-key (or LEZ_CAMERA_API_KEY)")
        return HttpSender(args.gateway, api_key, recorded=args.recorded)
    if not settings.kafka_bootstrap:
        raise LezError("LEZ_KAFKA_BOOTSTRAP is not set: which broker should the camera use?")
    return KafkaSender(settings.kafka_bootstrap, settings, proxy_url=args.kafka_proxy)


def _check_camera(args: argparse.Namespace, registry_file: Path | None) -> None:
    """The camera is in the registry (when there is one) and has a source; its place logged."""
    from lez.core.cameras import CameraRegistry

    registry = CameraRegistry.load(registry_file) if registry_file else None
    camera = registry.get(args.camera_id) if registry else None
    if registry is not None and camera is None:
        raise LezError(f"camera {args.camera_id!r} is not in the camera registry {registry_file}")
    if not args.source:
        raise LezError("which frames? give a JPEG directory, a video file or a stream URL")
    if camera is not None:
        log.info(
            "camera %s at %r, direction %r, %s the zone",
            camera.camera_id,
            camera.location,
            camera.direction,
            "inside" if camera.inside_zone else "outside",
        )


def _camera_spool(args: argparse.Namespace, settings: Settings) -> Spool:
    """The edge node's on-disk spool (VAR/cameras/ID/spool unless --spool-dir)."""
    from camera_ingest.spool import Spool

    if not settings.var_dir.is_absolute():
        log.warning(
            "LEZ_VAR_DIR is %s, relative to this folder: camera %s's frame sequence file and "
            "spool are under %s; run from another folder, it starts a new edge epoch (set "
            "LEZ_VAR_DIR to an absolute folder, as the units do: /var/lib/lez)",
            settings.var_dir, args.camera_id, (settings.var_dir / "cameras").resolve(),
        )
    spool = Spool(
        args.spool_dir or settings.var_dir / "cameras" / args.camera_id / "spool",
        max_frames=args.spool_max_frames,
        max_bytes=args.spool_max_mb * 1024 * 1024,
        drop=args.spool_drop,
        max_age=timedelta(seconds=settings.frame_max_age_s),
    )
    if len(spool):
        print(f"camera {args.camera_id}: {len(spool)} frame(s) waiting in the spool from before")
    return spool


def _camera_frames(args: argparse.Namespace, is_video: bool) -> Iterator[CapturedFrame]:
    """What ``lez camera`` pushes: a recorded batch with its capture times, or its source's
    frames (a video or stream read every Nth frame, a folder of JPEGs)."""
    from camera_ingest.source import iter_recorded, open_source

    if args.recorded:
        return iter_recorded(Path(args.source), args.camera_id)
    return open_source(
        args.source,
        args.every_nth if is_video else 1,
        args.quality,
        clock=args.camera_clock,
        start=args.start_time,
    )


def _cmd_camera(args: argparse.Namespace, settings: Settings) -> int:
    from camera_ingest.edge import EdgeNode
    from camera_ingest.gate import MotionGate
    from camera_ingest.source import edge_epoch
    from lez.app.observe import observe_edge

    registry_file: Path | None = args.registry or settings.cameras_file
    if args.issue_key:
        return _issue_key(args, registry_file)
    _check_camera(args, registry_file)
    sender = _camera_sender(args, settings)
    spool = _camera_spool(args, settings)
    is_video = not Path(args.source).is_dir()
    if args.recorded and is_video:
        raise LezError("--recorded needs a folder (frames.csv, or JPEGs with their mtimes)")

    def gate() -> MotionGate:
        return MotionGate(min_changed=args.motion_threshold, tail=args.motion_tail)

    obs = observe_edge(settings)
    edge = EdgeNode(
        spool,
        sender,
        settings.var_dir / "cameras",
        camera_id=args.camera_id,
        gate=gate if args.gate == "motion" and not args.recorded else None,
        every_nth=1 if is_video or args.recorded else args.every_nth,
        skew_threshold_s=None if args.recorded else args.skew_threshold,
        metrics=obs.metrics if obs else None,
        health=obs.health if obs else None,
        epoch=edge_epoch,
    ).start()
    if obs is not None:
        obs.health.checks["link"] = lambda: edge.link_up
    try:
        edge.capture_all(_camera_frames(args, is_video), fps=args.fps)
        drained = edge.wait_empty(args.drain_timeout)
    finally:
        edge.stop()
        if obs is not None:
            obs.stop()
    print(edge.report())
    if not drained:
        print(
            f"camera {args.camera_id}: {len(spool)} frame(s) still spooled; "
            "they are sent on the next start"
        )
    problems = edge.problems()
    for problem in problems:
        print(f"lez camera {args.camera_id}: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _cmd_chaos(args: argparse.Namespace, settings: Settings) -> int:
    from lez.app.chaos import run_chaos

    result = run_chaos(
        args.scenario,
        settings,
        ground_truth_plates=args.ground_truth_plates,
        outage_s=args.outage,
        rate=args.rate,
        timeout_s=args.timeout,
        apache_kafka=args.apache_kafka,
    )
    for line in result.details():
        print(line)
    if args.report:
        args.report.write_text(json.dumps(result.as_dict(), indent=1) + "\n")
    print(result.summary())
    return 0 if result.ok else 1


def _cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from lez.app.replay import run_replay

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
    from lez.app.compose import ocr_plate_reader
    from plate_reader.evaluate import evaluate

    report = evaluate(args.images, args.labels, ocr_plate_reader(threads=settings.ocr_threads))
    args.report.write_text(json.dumps(report, indent=1) + "\n")
    print(
        f"eval-plates: {report['correct']}/{report['images']} correct "
        f"({report['accuracy']:.1%}), country {report['country_correct']}/{report['images']} "
        f"(established wrong {report['country_established_wrong']}), "
        f"ms p50 {report['ms_p50']:.0f}, p95 {report['ms_p95']:.0f}"
    )
    return 0


def _cmd_bench_pipeline(args: argparse.Namespace, settings: Settings) -> int:
    from lez.app.bench_pipeline import BenchOptions, print_table, run_bench

    options = BenchOptions(
        rate=args.rate,
        seconds=args.seconds,
        plate_readers=args.plate_readers,
        cameras=args.cameras,
        drain_s=args.drain,
        ground_truth_plates=args.ground_truth_plates,
        find_max=args.find_max,
        search_seconds=args.search_seconds,
    )
    if args.brokers:
        from lez.app.bench_pipeline import broker_kinds, print_comparison, run_on_brokers

        kinds = broker_kinds(args.brokers)
        print_comparison(run_on_brokers(args.scenario, args.report, settings, options, kinds))
    else:
        print_table(run_bench(args.scenario, args.report, settings, options))
    print(f"report written to {args.report}")
    return 0


def _cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from lez.app.demo import run_embedded

    return run_embedded(
        settings,
        args.scenario,
        args.registry,
        args.exemptions,
        args.exit,
        plate_readers=args.plate_readers,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except Exception as exc:  # pydantic ValidationError: a bad LEZ_* variable
        print(f"lez: bad settings: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    commands: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
        "run": _cmd_run,
        "worker": _cmd_worker,
        "serve": _cmd_serve,
        "camera": _cmd_camera,
        "chaos": _cmd_chaos,
        "replay": _cmd_replay,
        "eval-plates": _cmd_eval,
        "migrate": lambda _args, s: _migrate(s),
        "users": _cmd_users,
        "payments": _cmd_payments,
        "topics": _create_topics,
        "bench-pipeline": _cmd_bench_pipeline,
    }
    try:
        return commands[args.command](args, settings)
    except LezError as exc:
        print(f"lez {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _create_topics(args: argparse.Namespace, settings: Settings) -> int:
    from lez.core.bus import ensure_topics
    from lez.core.names import TOPICS

    bootstrap = settings.kafka_bootstrap
    if not bootstrap:
        raise LezError("LEZ_KAFKA_BOOTSTRAP is not set: on which broker should the topics be?")
    update = {
        name: value
        for name, value in (
            ("topic_partitions", args.partitions),
            ("topic_replication_factor", args.replication_factor),
            ("topic_min_insync_replicas", args.min_insync_replicas),
        )
        if value is not None
    }
    settings = settings.model_copy(update=update)
    ensure_topics(settings, bootstrap)
    isr = settings.topic_min_insync_replicas or "the broker's"
    print(
        f"topics on {settings.kafka_bootstrap}: "
        f"{', '.join(settings.topic(t) for t in TOPICS)} "
        f"({settings.topic_partitions} partitions, retention {settings.topic_retention_ms} ms, "
        f"replication factor {settings.topic_replication_factor}, min.insync.replicas {isr} "
        "for those created now)"
    )
    return 0


def _cmd_payments(args: argparse.Namespace, settings: Settings) -> int:
    """``lez payments match FILE``: exit 1 when a payment matches no notice."""
    from fines.payments import report_matches
    from lez.app import compose

    sessions = compose.sessions(settings)
    with args.file.open(encoding="utf-8") as lines, sessions() as session:
        every_one_matched = report_matches(session, lines, sys.stdout)
    return 0 if every_one_matched else 1


def _migrate(settings: Settings) -> int:
    from lez.app import compose

    compose.migrate(settings)
    print(f"database at head: {settings.sqlalchemy_url().split('@')[-1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
