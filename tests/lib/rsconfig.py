"""rsconfig — write rolesyncd YAML configs for process-level tests (stdlib only).

    cfg = write_config(tmp, tenants={"src": tenant_for(src_sim), "dst": tenant_for(dst_sim)},
                       jobs=[{"name": "j", "source": "src", "target": "dst"}])
Secrets go to files `<tenant>.secret` (mode 0600) beside the config and are referenced with
client_secret_file; they never appear in the YAML or in a test's output.
"""

import json
import os

from simlib import write_secret, DEFAULT_CLIENT

__all__ = ["to_yaml", "write_config", "tenant_for"]


def _scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v))  # a JSON string is a valid YAML double-quoted scalar


def to_yaml(value, indent=0):
    """Block-style YAML for dicts, lists and scalars."""
    pad = " " * indent
    lines = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{k}:")
                lines.append(to_yaml(v, indent + 2))
            elif isinstance(v, dict):
                lines.append(f"{pad}{k}: {{}}")
            elif isinstance(v, list):
                lines.append(f"{pad}{k}: []")
            else:
                lines.append(f"{pad}{k}: {_scalar(v)}")
    elif isinstance(value, list):
        for v in value:
            if isinstance(v, dict) and v:
                inner = to_yaml(v, indent + 2).split("\n")
                lines.append(f"{pad}- {inner[0].lstrip()}")
                lines.extend(inner[1:])
            else:
                lines.append(f"{pad}- {_scalar(v)}")
    else:
        lines.append(pad + _scalar(value))
    return "\n".join(lines)


def tenant_for(sim, client=None, **extra):
    """Tenant entry for a running Sim: api, base_url, client id, tenant_id, plus `extra` keys.
    The secret is carried under the private key "_secret" and written to a file."""
    cid, secret = client or (sim.clients[0] if sim.clients else DEFAULT_CLIENT)
    t = {"api": sim.api, "base_url": sim.base_url, "client_id": cid, "_secret": secret}
    if sim.api == "identity":
        t["tenant_id"] = sim.tenant_id
    t.update(extra)
    return t


def write_config(directory, tenants, jobs, state_dir=None, name="rolesyncd.yaml", **top):
    """Write the config and the tenants' secret files; returns the config path. `top` holds
    other top-level keys (log_level, http, metrics_file)."""
    os.makedirs(directory, exist_ok=True)
    doc = {"state_dir": state_dir or os.path.join(directory, "state")}
    os.makedirs(doc["state_dir"], exist_ok=True)
    doc.update(top)
    tdoc = {}
    for tname, t in tenants.items():
        t = dict(t)
        secret = t.pop("_secret", None)
        if secret is not None:
            write_secret(directory, f"{tname}.secret", secret)
            t["client_secret_file"] = f"{tname}.secret"
        tdoc[tname] = t
    doc["tenants"] = tdoc
    doc["jobs"] = jobs
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(to_yaml(doc) + "\n")
    return path


# ------------------------------------------------------------------------------------------
# Reading tenant states the way the contract compares them

GENESYS_FORCED = {"employee"}
IDENTITY_MEMBER = "7ad2b9ef-5386-4ead-ac9f-ad99c5c5b977"
IDENTITY_ADMIN = "2dc742ab-39ea-4fc0-a39e-2bcb71c26a5f"


def user_roles(state, skip_keys=()):
    """{lower email: frozenset(lower role names)} of non-deleted users, leaving out roles whose
    built-in key (genesys defaultRoleId / identity RoleTypeId) is in skip_keys."""
    out = {}
    if state["api"] == "genesys":
        roles = {r["id"]: r for r in state["roles"]}
        for u in state["users"]:
            if u.get("state") == "deleted" or not u.get("email"):
                continue
            out[u["email"].lower()] = frozenset(
                roles[x]["name"].lower() for x in u["roles"]
                if x in roles and roles[x].get("defaultRoleId") not in skip_keys)
    else:
        roles = {r["Id"]: r for r in state["roles"]}
        for u in state["users"]:
            email = u.get("Email") or u.get("ContactEmail")
            if not email:
                continue
            out[email.lower()] = frozenset(
                roles[x]["Name"].lower() for x in u["RoleIds"]
                if x in roles and (roles[x].get("RoleTypeId") or "") not in skip_keys)
    return out


def custom_roles(state):
    """{lower name: role dict} of custom roles."""
    if state["api"] == "genesys":
        return {r["name"].lower(): r for r in state["roles"] if not r.get("defaultRoleId")}
    return {r["Name"].lower(): r for r in state["roles"] if not r.get("RoleTypeId")}


def policies_canon(role):
    """Order-insensitive form of a genesys role's permissions and policies."""
    pols = set()
    for p in role.get("permissionPolicies") or []:
        pols.add((p.get("domain"), p.get("entityName"), tuple(sorted(p.get("actionSet") or [])),
                  bool(p.get("allowConditions"))))
    return (frozenset(role.get("permissions") or []), frozenset(pols))


def user_grants(state, skip_keys=("employee", "admin")):
    """{lower email: frozenset((lower role name, division))} of a genesys state's non-deleted
    users' DIRECT grants, the division named as the platform would compare it across orgs:
    "home" for the home division, "*" for all divisions, else its lower-cased name. Roles whose
    defaultRoleId is in skip_keys are left out."""
    roles = {r["id"]: r for r in state["roles"]}
    divs = state.get("divisions") or []
    home = next((d["id"] for d in divs if d.get("home")), divs[0]["id"] if divs else None)
    names = {d["id"]: d["name"].lower() for d in divs}
    out = {}
    for u in state["users"]:
        if u.get("state") == "deleted" or not u.get("email"):
            continue
        pairs = [(r, home) for r in u.get("roles") or []]
        pairs += [(g["role"], g["division"]) for g in u.get("grants") or []]
        got = set()
        for rid, did in pairs:
            r = roles.get(rid)
            if not r or r.get("defaultRoleId") in skip_keys:
                continue
            label = "home" if did == home else "*" if did == "*" else names.get(did, did)
            got.add((r["name"].lower(), label))
        out[u["email"].lower()] = frozenset(got)
    return out
