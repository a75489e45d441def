"""The stellate showcase: a small application that uses most of the framework at once.

Serve it from ``examples/`` (``scripts/serve showcase.app:app``) and open
http://127.0.0.1:8000/. ``app.py`` wires everything together; each other module is one
feature: ``pages.py`` (templated pages, forms, upload, login), ``api.py`` (the JSON API
and the SSE stream), ``feed.py`` (the live event feed), ``chat.py`` (the WebSocket chat
room), ``work.py`` (background work), ``store.py`` (notes and uploads, kept in memory),
``accounts.py`` (demo accounts and the session backend), ``schema.py`` (GraphQL).
"""
