"""The browser latent explorer: `genlab serve RUN` (api.py answers, server.py speaks HTTP, static/ is the page)."""
