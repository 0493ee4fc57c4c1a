"""The grounded world: a marketplace on real occupations (O*NET-SOC, ESCO), real places and wages (BLS OEWS).

``taxonomy`` reads the committed extract and resolves every title to a role (both worlds); ``styles`` holds
the writing styles; ``world`` draws jobs and members. Selected by ``data.synthetic.world: grounded``; the data
files are built by ``scripts/build_grounded_world.py`` (``make grounded-world``), see ``README.md`` here.
"""
