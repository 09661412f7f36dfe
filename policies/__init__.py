"""policies: declarative, validated policy files and the engine that evaluates them."""
