"""Operating Taskpipe's container stack: the compose smoke check (`make compose-smoke`).

Runs on the developer's machine or in CI with the project's venv; nothing here ships in the image.
"""
