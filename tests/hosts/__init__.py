"""Host apps unlike the demo, each with its own layout and CSS, that the browser tests visit.

``app.py`` builds them; ``<look>/templates/base.html`` is each host's layout.
"""
