"""The only path from the pipeline to the vehicle registry (DIV), and the LEZ rules."""
