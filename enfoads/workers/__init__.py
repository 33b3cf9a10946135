"""The distributed backend: jobs run on GPU worker processes (Celery + Redis).

``backend.CeleryJobQueue`` is the engine's queue when ``ENFOADS_QUEUE=celery``; ``worker`` is
what ``enfoads worker --gpu N`` runs. The database stays the record of every job.
"""
