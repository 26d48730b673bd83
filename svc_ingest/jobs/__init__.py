"""Ingest jobs: the manager behind IngestService's RPCs and the run of one job over explicit dependencies.

``manager`` creates, watches and cancels jobs and lists and deletes documents;
``run`` executes one job through ``dependencies`` (the ports of
``svc_ingest.domain.ports`` and the Ray cluster); ``staging`` reads sources,
``feed`` drives the Ray Data pipeline, ``writer`` writes to the index,
``uploads`` receives uploaded files and ``paging`` makes ListDocuments tokens.
"""

from svc_ingest.jobs.live import ProgressEvent
from svc_ingest.jobs.manager import JobManager
from svc_ingest.jobs.uploads import UPLOAD_SCHEME, UploadPiece

__all__ = ["UPLOAD_SCHEME", "JobManager", "ProgressEvent", "UploadPiece"]
