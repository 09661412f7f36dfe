"""dashboards: the control plane, its JSON API and the review console."""
