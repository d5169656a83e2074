"""schemanav — reading conf/rolesyncd.schema.json by config structure (tests only).

`SchemaNav(root).at(path)` gives the schema of a config path, with its $ref and allOf members
merged in: () is the document, "*" a tenant (additionalProperties), "[]" a job (items), any other
part a property name. Used by the schema and man-page tests.
"""

__all__ = ["SchemaNav"]


class SchemaNav:
    def __init__(self, root):
        self.root = root

    def resolve(self, ref):
        assert ref.startswith("#/"), "only local $ref is supported: %s" % ref
        node = self.root
        for part in ref[2:].split("/"):
            node = node[part]
        return node

    def flatten(self, schema):
        """A schema with its $ref and allOf members merged in (for reading, not validating)."""
        out = {}
        for member in [schema] + schema.get("allOf", []):
            if "$ref" in member:
                member = dict(self.flatten(self.resolve(member["$ref"])), **{
                    k: v for k, v in member.items() if k != "$ref"})
            for k, v in member.items():
                if k == "properties":
                    out.setdefault("properties", {}).update(v)
                elif k != "allOf":
                    out.setdefault(k, v)
        return out

    def at(self, path):
        node = self.flatten(self.root)
        for part in path:
            if part == "*":
                node = node["additionalProperties"]
            elif part == "[]":
                node = node["items"]
            else:
                node = node["properties"][part]
            node = self.flatten(node)
        return node
