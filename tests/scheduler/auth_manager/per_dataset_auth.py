"""Airflow's simple auth manager, deciding per DAG for one user as an auth manager with per-DAG permissions does
(FAB's): `holiday_reader` (a viewer) may read the holiday dataset's DAGs and no other. The browser test's Airflow
runs with it (AIRFLOW__CORE__AUTH_MANAGER); every other decision is the simple auth manager's own."""

from __future__ import annotations

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

READER, DATASET = "holiday_reader", "holiday"


class PerDatasetAuthManager(SimpleAuthManager):
    def is_authorized_dag(self, *, method, user, access_entity=None, details=None) -> bool:
        if user.get_name() == READER and not (details and str(details.id or "").endswith(f"__{DATASET}")):
            return False
        return super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)
