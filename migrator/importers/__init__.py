"""`migrate import`: load the archive's sessions where the new code will read them.

One module per target, each a function taking an open `Archive` and returning an `ImportSummary`:

    import_jsonl(archive, "sessions.jsonl")                        # the portable form
    import_agents_sqlite(archive, Path("sessions.db"))             # Agents SDK SQLiteSession + agents.json
    import_conversations(archive, TargetSettings(url, key))        # Conversations API, resumable
    import_vector_stores(archive, TargetSettings(url, key))        # files + vector stores, resumable

The session importers stream the sessions in thread-id order, report progress through a callback, and can
write a mapping CSV (`mapping_out`) to join against the user's own tables.
"""

from migrator.importers.agents_sqlite import import_agents_sqlite
from migrator.importers.common import ImportProgress, ImportSummary, Selection
from migrator.importers.items import session_items
from migrator.importers.jsonl import import_jsonl
from migrator.lazy import lazy_attributes

# The targets behind an API (the openai SDK, the request path) are imported when first named, so that
# the file targets (jsonl, agents-sqlite) start without them.
_REMOTE = {
    "ConversationsOptions": "migrator.importers.conversations",
    "TargetSettings": "migrator.importers.conversations",
    "conversation_metadata": "migrator.importers.conversations",
    "import_conversations": "migrator.importers.conversations",
    "VectorProgress": "migrator.importers.vector_stores",
    "VectorStoresOptions": "migrator.importers.vector_stores",
    "VectorStoresSummary": "migrator.importers.vector_stores",
    "import_vector_stores": "migrator.importers.vector_stores",
}
__getattr__ = lazy_attributes(__name__, _REMOTE)


__all__ = [
    "ConversationsOptions",
    "ImportProgress",
    "ImportSummary",
    "Selection",
    "TargetSettings",
    "VectorProgress",
    "VectorStoresOptions",
    "VectorStoresSummary",
    "conversation_metadata",
    "import_agents_sqlite",
    "import_conversations",
    "import_jsonl",
    "import_vector_stores",
    "session_items",
]
