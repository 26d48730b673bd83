"""svc_agent: AgentService, the agentic answer loop streamed with citations, with chat memory and answer caches."""
