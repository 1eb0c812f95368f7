"""The simulated outside world, apart from production code: the mock DIV registry service
(:mod:`.div_service`), the registry and exemption files it serves (:mod:`.registry_data`) and
the scenario checker (:mod:`.check_scenario`). Only the app layer (the CLI, the embedded stack,
replay, chaos, demo) and the tests use it; no stage imports it."""
