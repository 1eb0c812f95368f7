"""Camera edge: frames from a directory, a video file or a stream to lez.frames."""
