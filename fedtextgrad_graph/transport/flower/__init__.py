"""Flower as the multi-site engine.

Server side: ``server_transport`` (the round graph reaches sites through a Grid),
``server_hosting`` (this process as the ServerApp of a run it starts), ``server_app``
(the Flower-native ServerApp). Site side: ``site_app`` (the ClientApp) and
``site_executor`` (serving it from one long-lived site process). Both: ``messages`` (the
wire types in Flower messages) and ``processes`` (SuperLink and SuperNode commands).
Needs the ``flower`` extra; nothing here is imported unless a run uses Flower.
"""
