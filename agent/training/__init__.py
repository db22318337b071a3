"""The router's training data: phrasings as tables (tables.py) and one generic generator over them
(generator.py). Only ``python -m jetfm.agent.train_router`` imports this package; the runtime (the
router, the planner, the agent graph, the app) never does, and a test checks that."""
