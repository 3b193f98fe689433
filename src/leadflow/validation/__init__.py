"""The ``lead.validate`` step: clean contact data, context, data quality and spam signals."""
