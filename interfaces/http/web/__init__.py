"""The web UI's files (index.html, app.js, app.css), served by routes/pages.py.

A package, so that setuptools ships the files in the wheel as package data."""
