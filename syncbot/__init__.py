"""Entry points and composition: the CLI, the HTTP/Socket Mode server, the console and its sandbox."""
