"""Downloadable exports of a portal (CSV, XLSX, PDF), each built from one `Report`.

render.py turns a PortalView into a `Report` once; the exporters only lay it out, so the
three files always agree with each other and with the page.
"""
