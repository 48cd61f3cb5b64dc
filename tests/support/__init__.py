"""What the tests share: starting the service and stopping it (service.py, desk.py), the
databases (database.py), processes of their own (processes.py, serve_process.py,
scheduler_worker.py), clients of the web chat and the agent workspace (chat.py, agent.py),
headless Chromium (browser.py), the channel tests' constants and readers (channels.py), and the
providers' fake APIs and signed webhooks (fakes/). The conftest.py files hold only fixtures and
hooks; a test module imports its helpers from here, never from another test module."""
