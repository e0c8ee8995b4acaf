"""The web UI's files, served by routes/pages.py: index.html, the ES modules of its
script (app.js, the entry, imports the others), app.css and icon.svg.

A package, so that setuptools ships the files in the wheel as package data."""
