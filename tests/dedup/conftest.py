# Deduplication is tested inside the whole pipeline, with its recording CRM.
from tests.pipeline.conftest import config, crm_log

__all__ = ["config", "crm_log"]
