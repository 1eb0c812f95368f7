"""The shared core: settings, event schemas, the Kafka bus, the stage runner, errors, plate
normalisation, cameras, the pure rules engine and the Protocols at the seams.

Imports nothing of the stages nor of the app layer (``lez.app``)."""
