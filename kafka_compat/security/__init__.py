"""Kafka's security model, as sans-I/O cores that the connection layer and the handlers call.

    acls          ACL codes, bindings, filters, and the AclIndex the metadata image holds
    authorizer    StandardAuthorizer: authorize(image.acls, principal, host, operation, resource)
    principal     DefaultKafkaPrincipalBuilder and SslPrincipalMapper
    tls           ssl.SSLContext from Kafka's ssl.* settings
    sasl/         the mechanisms (plain, scram, oauthbearer), the per-connection authenticator, and
                  a listener's SASL setup from Kafka's keys (listener)
    jaas          JAAS configuration strings
    quotas        quota resolution, rates and throttle times
    config        per-listener settings (listener.name.<l>.<key>)

The admin APIs that change what these read (CreateAcls, DeleteAcls, AlterUserScramCredentials,
AlterClientQuotas, and their Describe forms) are controller operations in kafka_compat.metadata
(acl_control, scram_control, quota_control).
"""
