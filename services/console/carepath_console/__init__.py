"""The console: a backend-for-frontend that serves the web app and is its only origin."""
