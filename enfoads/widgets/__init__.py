"""ipywidgets panels over the Studio facade (the notebook and the Voila dashboard).

Never imports torch: panels talk to ``enfoads.core.studio.Studio`` only.
"""
