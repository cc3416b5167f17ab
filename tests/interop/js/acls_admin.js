// KafkaJS admin ACL calls (tests/interop/test_acls_admin.py): {bootstrap, principal, prefix}.
// Creates a literal, a prefixed and a DENY ACL for `principal`, describes them with MATCH,
// LITERAL and PREFIXED filters, deletes the prefixed one, and describes again. Prints what each
// call returned, or {error: {name, type, message}} for the first call that throws.
'use strict'
const { AclResourceTypes, AclOperationTypes, AclPermissionTypes, ResourcePatternTypes } = require('kafkajs')
const { makeKafka, main } = require('./core_lib')

const acl = (principal, name, patternType, operation, permission) => ({
  resourceType: AclResourceTypes.TOPIC, resourceName: name, resourcePatternType: patternType,
  principal, host: '*', operation, permissionType: permission,
})

// describeAcls' answer as [resourceName, patternType, operation, permission] rows, sorted.
const rows = described => described.resources.flatMap(r => r.acls.map(a =>
  [r.resourceName, r.resourcePatternType, a.operation, a.permissionType])).sort()

main(async ({ bootstrap, principal, prefix, disabled }) => {
  const admin = makeKafka(bootstrap).admin()
  await admin.connect()
  const out = {}
  const filter = (name, patternType) => ({
    resourceType: AclResourceTypes.TOPIC, resourceName: name, resourcePatternType: patternType,
    principal, host: '*', operation: AclOperationTypes.ANY, permissionType: AclPermissionTypes.ANY,
  })
  try {
    if (disabled) {
      await admin.createAcls({ acl: [acl(principal, 't', ResourcePatternTypes.LITERAL,
        AclOperationTypes.READ, AclPermissionTypes.ALLOW)] })
      return { created: true }
    }
    out.created = await admin.createAcls({ acl: [
      acl(principal, `${prefix}orders`, ResourcePatternTypes.LITERAL, AclOperationTypes.READ, AclPermissionTypes.ALLOW),
      acl(principal, `${prefix}ord`, ResourcePatternTypes.PREFIXED, AclOperationTypes.WRITE, AclPermissionTypes.ALLOW),
      acl(principal, `${prefix}orders`, ResourcePatternTypes.LITERAL, AclOperationTypes.WRITE, AclPermissionTypes.DENY),
    ] })
    out.match = rows(await admin.describeAcls(filter(`${prefix}orders`, ResourcePatternTypes.MATCH)))
    out.literal = rows(await admin.describeAcls(filter(`${prefix}orders`, ResourcePatternTypes.LITERAL)))
    out.prefixed = rows(await admin.describeAcls(filter(`${prefix}ord`, ResourcePatternTypes.PREFIXED)))
    const deleted = await admin.deleteAcls({ filters: [filter(`${prefix}ord`, ResourcePatternTypes.PREFIXED)] })
    out.deleted = deleted.filterResponses.map(f => ({
      errorCode: f.errorCode,
      matching: f.matchingAcls.map(m => [m.resourceName, m.resourcePatternType, m.operation]),
    }))
    // KafkaJS requires a resource name in every filter.
    out.after = rows(await admin.describeAcls(filter(`${prefix}orders`, ResourcePatternTypes.ANY)))
    return out
  } catch (e) {
    return { ...out, error: { name: e.name, type: e.type || null, message: e.message } }
  } finally {
    await admin.disconnect()
  }
})
