"""The app layer: CLI, composition root, embedded stack, replay, chaos, demo.

The only code that imports the stages (``camera_ingest``, ``plate_reader``, ``fidus_adapter``,
``fines``); the stages import only the core (the rest of ``lez``)."""
