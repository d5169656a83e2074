// fidelity.js — drive tenantsim with the official Genesys Cloud JavaScript SDK
// (purecloud-platform-client-v2), as spec/simulator.md section 5 asks, including version 2's
// divisions, groups, grants and the cursor listing (section 3b).
//
// Environment: TENANTSIM_PORT (required), SDK_CLIENT_ID, SDK_CLIENT_SECRET, SDK_PAGE_SIZE
// (default 7, small so roles and users span several pages). HOME should point at an empty
// folder so no SDK config file on the machine changes where requests go.
//
// Prints one JSON object on stdout: every call with its outcome, and what it read and wrote, so
// the Python side (test_sdk_fidelity.py) can compare it with the simulator's own state.
// Exit code 0 when every call behaved as the platform documents, 1 otherwise.
'use strict';

const platformClient = require('purecloud-platform-client-v2');

const port = parseInt(process.env.TENANTSIM_PORT || '', 10);
const clientId = process.env.SDK_CLIENT_ID || 'client';
const clientSecret = process.env.SDK_CLIENT_SECRET || 'secret';
const pageSize = parseInt(process.env.SDK_PAGE_SIZE || '7', 10);

const summary = {
  sdk_version: require('purecloud-platform-client-v2/package.json').version,
  calls: [],
};

// The SDK rejects with the parsed ErrorBody for API calls and with the axios error for login;
// pull a status and a code out of either.
function describeError(err) {
  if (err === null || err === undefined) return { message: String(err) };
  const body = err.body || (err.response && err.response.data) || err;
  return {
    status: err.status || (err.response && err.response.status) || body.status,
    code: body.code || body.error,
    message: body.message || err.message || String(err),
  };
}

// Run one SDK call; record it. `expectStatus` set = the call must be rejected with that status.
async function call(name, fn, expectStatus) {
  const rec = { name };
  summary.calls.push(rec);
  try {
    const res = await fn();
    rec.ok = expectStatus === undefined;
    if (!rec.ok) rec.error = `expected HTTP ${expectStatus}, the call succeeded`;
    return res;
  } catch (err) {
    const e = describeError(err);
    rec.status = e.status;
    rec.code = e.code;
    rec.ok = expectStatus !== undefined && e.status === expectStatus;
    if (!rec.ok) rec.error = e.message;
    return undefined;
  }
}

function check(name, cond, detail) {
  summary.calls.push({ name, ok: !!cond, error: cond ? undefined : detail });
}

// Page through a listing by pageNumber, following the envelope like public clients do: stop
// when nextUri is absent; cross-check total and pageCount on the way.
async function pageAll(label, fetchPage) {
  const all = [];
  let pages = 0;
  let total = null;
  for (let page = 1; page <= 10000; page++) {
    const res = await call(`${label} page ${page}`, () => fetchPage(page));
    if (!res) break;
    pages++;
    if (total === null) total = res.total;
    check(`${label} page ${page} envelope`,
      res.pageNumber === page && res.pageSize === pageSize && Array.isArray(res.entities) &&
      res.pageCount === Math.ceil(res.total / pageSize) && (page === 1) === (res.previousUri === undefined),
      `bad envelope ${JSON.stringify({ pageNumber: res.pageNumber, pageSize: res.pageSize, total: res.total, pageCount: res.pageCount })}`);
    all.push(...res.entities);
    if (!res.nextUri) break;
  }
  check(`${label} total`, total === all.length, `total ${total}, listed ${all.length}`);
  return { all, pages };
}

async function main() {
  if (!Number.isInteger(port) || port <= 0) throw new Error('TENANTSIM_PORT is not set');
  const client = platformClient.ApiClient.instance;
  client.config.live_reload_config = false; // no file watcher keeping node alive
  client.setGateway({ host: '127.0.0.1', protocol: 'http', port });

  const auth = await call('loginClientCredentialsGrant',
    () => client.loginClientCredentialsGrant(clientId, clientSecret));
  if (!auth) return;
  check('token expiry in the future', auth.tokenExpiryTime > Date.now(), 'expiry not in the future');

  const authApi = new platformClient.AuthorizationApi();
  const usersApi = new platformClient.UsersApi();

  // read everything, several pages each
  const roles = await pageAll('getAuthorizationRoles',
    (page) => authApi.getAuthorizationRoles({ pageSize, pageNumber: page }));
  summary.roles = roles.all.map((r) => ({ id: r.id, name: r.name, default: !!r.default, defaultRoleId: r.defaultRoleId }));
  summary.role_pages = roles.pages;

  const users = await pageAll('getUsers',
    (page) => usersApi.getUsers({ pageSize, pageNumber: page, expand: ['authorization'] }));
  summary.users = users.all.map((u) => ({
    id: u.id, email: u.email, state: u.state,
    roles: ((u.authorization && u.authorization.roles) || []).map((r) => r.id).sort(),
  }));
  summary.user_pages = users.pages;
  const employee = roles.all.find((r) => r.defaultRoleId === 'employee');
  check('employee role listed', employee !== undefined, 'no role with defaultRoleId employee');
  check('every listed user holds employee', employee && summary.users.every((u) => u.roles.includes(employee.id)),
    'a user without employee in authorization.roles');

  // create, read, update a role
  const createBody = {
    name: 'SDK Fidelity Role',
    description: 'created by the SDK fidelity test',
    permissionPolicies: [{ domain: 'directory', entityName: 'user', actionSet: ['view'] }],
  };
  const created = await call('postAuthorizationRoles', () => authApi.postAuthorizationRoles(createBody));
  if (!created) return;
  summary.created_role_id = created.id;
  check('created role echoes its name', created.name === createBody.name && typeof created.id === 'string',
    `got ${JSON.stringify(created)}`);
  await call('postAuthorizationRoles duplicate name -> 409',
    () => authApi.postAuthorizationRoles({ name: createBody.name.toUpperCase() }), 409);

  const updateBody = {
    name: 'SDK Fidelity Role Renamed',
    description: 'updated by the SDK fidelity test',
    permissionPolicies: [
      { domain: 'directory', entityName: 'user', actionSet: ['view', 'edit'] },
      { domain: 'routing', entityName: 'queue', actionSet: ['view'] },
    ],
  };
  const updated = await call('putAuthorizationRole', () => authApi.putAuthorizationRole(created.id, updateBody));
  check('updated role echoes the new name', updated && updated.name === updateBody.name, `got ${JSON.stringify(updated)}`);
  const fetched = await call('getAuthorizationRole', () => authApi.getAuthorizationRole(created.id));
  if (fetched) {
    summary.updated_role = {
      name: fetched.name, description: fetched.description,
      policies: (fetched.permissionPolicies || []).map((p) => `${p.domain}:${p.entityName}:${(p.actionSet || []).join(',')}`).sort(),
    };
  }
  if (employee) {
    await call('deleteAuthorizationRole default role -> 400',
      () => authApi.deleteAuthorizationRole(employee.id), 400);
  }

  // set one user's roles (UsersApi), read them back (AuthorizationApi)
  const user = users.all[0];
  const custom = roles.all.filter((r) => !r.default).slice(0, 2).map((r) => r.id);
  if (user && custom.length) {
    const want = custom.concat([created.id]);
    summary.user_id = user.id;
    summary.set_roles = want.slice().sort();
    const put = await call('UsersApi.putUserRoles', () => usersApi.putUserRoles(user.id, want));
    if (put) summary.put_reply_roles = (put.roles || []).map((r) => r.id).sort();
    const back = await call('AuthorizationApi.getUserRoles', () => authApi.getUserRoles(user.id));
    if (back) summary.read_back = (back.roles || []).map((r) => r.id).sort();
    await call('AuthorizationApi.putUserRoles unknown role -> 404',
      () => authApi.putUserRoles(user.id, ['00000000-0000-4000-8000-000000000000']), 404);
  } else {
    check('a user and custom roles to assign', false, 'the fixture has no users or no custom roles');
  }

  // delete the role; it is gone afterwards
  await call('deleteAuthorizationRole', () => authApi.deleteAuthorizationRole(created.id));
  summary.deleted_role_id = created.id;
  await call('getAuthorizationRole after delete -> 404', () => authApi.getAuthorizationRole(created.id), 404);

  await divisionsAndGrants(authApi, usersApi, roles.all, users.all);
}

// Version 2 (simulator.md section 3b): divisions, groups, the cursor listing, grant reads and
// every division-aware grant write. Users 1 and 2 of the listing are the ones written to.
async function divisionsAndGrants(authApi, usersApi, roles, users) {
  const groupsApi = new platformClient.GroupsApi();

  const divisions = await pageAll('getAuthorizationDivisions',
    (page) => authApi.getAuthorizationDivisions({ pageSize, pageNumber: page }));
  summary.divisions = divisions.all.map((d) => d.id);
  const home = await call('getAuthorizationDivisionsHome', () => authApi.getAuthorizationDivisionsHome());
  summary.home_division = home && home.id;
  const other = divisions.all.find((d) => !d.homeDivision);
  if (!home || !other) {
    check('a home and another division', false, 'the fixture needs two divisions');
    return;
  }
  const named = await call('getAuthorizationDivisions name filter',
    () => authApi.getAuthorizationDivisions({ name: other.name }));
  check('the name filter finds the division', named && named.entities.some((d) => d.id === other.id),
    `got ${JSON.stringify(named)}`);

  const groups = await pageAll('GroupsApi.getGroups', (page) => groupsApi.getGroups({ pageSize, pageNumber: page }));
  summary.groups = groups.all.map((g) => ({ id: g.id, name: g.name, memberCount: g.memberCount, type: g.type }));
  const group = groups.all[0];
  let member;
  if (group) {
    const members = await call('GroupsApi.getGroupMembers', () => groupsApi.getGroupMembers(group.id, { pageSize: 100 }));
    member = members && members.entities[0];
  }

  // every user, through the cursor: no page twice, nobody twice
  const seen = [];
  let cursor;
  for (let page = 1; page <= 1000; page++) {
    const res = await call(`getUsersQuery page ${page}`,
      () => usersApi.getUsersQuery({ pageSize, state: 'any', expand: ['authorization'], cursor }));
    if (!res) break;
    check(`getUsersQuery page ${page} results`, res.results === res.entities.length && (res.cursor === undefined) === (res.nextUri === undefined),
      `results ${res.results}, entities ${res.entities.length}, cursor ${res.cursor}, nextUri ${res.nextUri}`);
    seen.push(...res.entities.map((u) => u.id));
    if (!res.cursor) break;
    cursor = res.cursor;
  }
  summary.query_users = seen;

  const custom = roles.filter((r) => !r.default).map((r) => r.id);
  const [u1, u2] = [users[1], users[2]];
  if (custom.length < 5 || !u2) {
    check('roles and users for the grant writes', false, 'the fixture has too few custom roles or users');
    return;
  }
  const [r, r2, r3] = [custom[2], custom[3], custom[4]];
  summary.grant_writes = { user: u1.id, other_user: u2.id, division: other.id, home: home.id, r, r2, r3 };

  await call('postAuthorizationRole (bulk grant)',
    () => authApi.postAuthorizationRole(r, { subjectIds: [u1.id], divisionIds: [other.id] }, { subjectType: 'PC_USER' }));
  const subject = await call('getAuthorizationSubject', () => authApi.getAuthorizationSubject(u1.id));
  check('the grant shows on the subject', subject && subject.grants.some((g) =>
    g.subjectId === u1.id && g.role.id === r && g.division.id === other.id && g.division.name === other.name),
  `grants ${JSON.stringify(subject && subject.grants)}`);
  const sg = await call('getAuthorizationRoleSubjectgrants',
    () => authApi.getAuthorizationRoleSubjectgrants(r, { pageSize: 100 }));
  const mine = sg && sg.entities.find((e) => e.id === u1.id);
  check('the user holds the role in the division', mine && mine.type === 'PC_USER' &&
    mine.divisions.some((d) => d.id === other.id), `entities ${JSON.stringify(sg && sg.entities)}`);
  await call('getAuthorizationRoleSubjectgrants pageSize 101 -> 400',
    () => authApi.getAuthorizationRoleSubjectgrants(r, { pageSize: 101 }), 400);

  await call('postAuthorizationSubjectBulkadd', () => authApi.postAuthorizationSubjectBulkadd(u1.id,
    { grants: [{ roleId: r2, divisionId: home.id }, { roleId: r2, divisionId: '*' }] }, { subjectType: 'PC_USER' }));
  await call('postAuthorizationSubjectBulkadd unknown division -> 404', () => authApi.postAuthorizationSubjectBulkadd(u1.id,
    { grants: [{ roleId: r3, divisionId: '00000000-0000-4000-8000-00000000dead' }] }, { subjectType: 'PC_USER' }), 404);
  await call('postAuthorizationSubjectBulkremove', () => authApi.postAuthorizationSubjectBulkremove(u1.id,
    { grants: [{ roleId: r2, divisionId: '*' }] }));
  await call('postAuthorizationSubjectDivisionRole',
    () => authApi.postAuthorizationSubjectDivisionRole(u1.id, other.id, r3, { subjectType: 'PC_USER' }));
  await call('deleteAuthorizationSubjectDivisionRole',
    () => authApi.deleteAuthorizationSubjectDivisionRole(u1.id, other.id, r));
  await call('deleteAuthorizationSubjectDivisionRole not held -> 404',
    () => authApi.deleteAuthorizationSubjectDivisionRole(u1.id, other.id, r), 404);
  await call('postAuthorizationSubjectBulkreplace', () => authApi.postAuthorizationSubjectBulkreplace(u2.id,
    { grants: [{ roleId: r, divisionId: other.id }] }, { subjectType: 'PC_USER' }));

  if (member) {
    const inherited = await call('getAuthorizationSubject includeDuplicates',
      () => authApi.getAuthorizationSubject(member.id, { includeDuplicates: true }));
    summary.member = member.id;
    summary.member_grants = inherited ? inherited.grants.map((g) => [g.subjectId, g.role.id, g.division.id]) : [];
  }
}

main()
  .catch((err) => summary.calls.push({ name: 'fidelity.js', ok: false, error: String(err && err.stack || err) }))
  .finally(() => {
    summary.ok = summary.calls.length > 0 && summary.calls.every((c) => c.ok);
    process.stdout.write(JSON.stringify(summary) + '\n', () => process.exit(summary.ok ? 0 : 1));
  });
