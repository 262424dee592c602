"""ClientApp: one site's local TextGrad steps and scoring on its own data.

The SuperNode names the site: ``flower-supernode --node-config 'site-config="/path/site.toml"'``.
"""

from fedtextgrad_graph.transport.flower.site_app import app

__all__ = ["app"]
