package kc;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Function;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.DescribeConfigsOptions;
import org.apache.kafka.clients.admin.FeatureUpdate;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsSpec;
import org.apache.kafka.clients.admin.ListGroupsOptions;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.clients.admin.MemberToRemove;
import org.apache.kafka.clients.admin.NewPartitionReassignment;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.QuorumInfo;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.RemoveMembersFromConsumerGroupOptions;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicCollection;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.TopicPartitionReplica;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AccessControlEntryFilter;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.quota.ClientQuotaFilter;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourcePatternFilter;
import org.apache.kafka.common.resource.ResourceType;

/**
 * The AdminClient, one op per call, results as plain JSON. Calls that act on several items (topics,
 * partitions, groups) answer per item: {@code {"value": ...}} or {@code {"error": {type, message}}},
 * so one refused item does not hide the others; a call that fails as a whole raises.
 */
final class Admins {
  private final Driver driver;
  private Admin admin;

  Admins(Driver driver) {
    this.driver = driver;
  }

  private Admin admin() {
    if (admin == null) {
      Map<String, Object> conf = new HashMap<>();
      conf.put("bootstrap.servers", driver.bootstrap);
      conf.putAll(driver.common);
      conf.put("request.timeout.ms", "10000");
      conf.put("default.api.timeout.ms", "20000");
      admin = Admin.create(conf);
    }
    return admin;
  }

  void close() {
    if (admin != null) admin.close(Duration.ofSeconds(5));
  }

  void register(Map<String, Driver.Op> ops) {
    ops.put("admin.createTopics", this::createTopics);
    ops.put("admin.listTopics", a -> {
      List<String> names = new ArrayList<>(admin().listTopics(new ListTopicsOptions().listInternal(
          a.path("internal").asBoolean(false))).names().get());
      names.sort(null);
      return names;
    });
    ops.put("admin.describeTopics", a -> {
      TopicCollection which = a.has("ids")
          ? TopicCollection.ofTopicIds(strings(a.get("ids")).stream().map(Uuid::fromString).toList())
          : TopicCollection.ofTopicNames(strings(a.get("names")));
      var result = admin().describeTopics(which);
      return a.has("ids") ? each(result.topicIdValues(), Uuid::toString, Admins::topic)
          : each(result.topicNameValues(), k -> k, Admins::topic);
    });
    ops.put("admin.createPartitions", a -> {
      Map<String, NewPartitions> req = new HashMap<>();
      a.get("topics").fields().forEachRemaining(e -> req.put(e.getKey(), NewPartitions.increaseTo(e.getValue().asInt())));
      return each(admin().createPartitions(req).values(), k -> k, v -> true);
    });
    ops.put("admin.deleteTopics", a -> {
      if (a.has("ids")) {
        var ids = strings(a.get("ids")).stream().map(Uuid::fromString).toList();
        return each(admin().deleteTopics(TopicCollection.ofTopicIds(ids)).topicIdValues(), Uuid::toString, v -> true);
      }
      return each(admin().deleteTopics(TopicCollection.ofTopicNames(strings(a.get("names")))).topicNameValues(),
          k -> k, v -> true);
    });
    ops.put("admin.describeConfigs", this::describeConfigs);
    ops.put("admin.incrementalAlterConfigs", this::incrementalAlterConfigs);
    ops.put("admin.deleteRecords", a -> {
      Map<TopicPartition, RecordsToDelete> req = new HashMap<>();
      String topic = a.get("topic").asText();
      a.get("before").fields().forEachRemaining(e -> req.put(new TopicPartition(topic, Integer.parseInt(e.getKey())),
          RecordsToDelete.beforeOffset(e.getValue().asLong())));
      return each(admin().deleteRecords(req).lowWatermarks(), tp -> String.valueOf(tp.partition()), d -> d.lowWatermark());
    });
    ops.put("admin.listOffsets", this::listOffsets);
    ops.put("admin.describeCluster", a -> {
      var r = admin().describeCluster();
      Map<String, Object> out = new LinkedHashMap<>();
      out.put("clusterId", r.clusterId().get());
      out.put("controller", node(r.controller().get()));
      List<Object> nodes = new ArrayList<>();
      for (Node n : r.nodes().get()) nodes.add(node(n));
      out.put("nodes", nodes);
      return out;
    });
    ops.put("admin.describeLogDirs", a -> {
      List<Integer> brokers = new ArrayList<>();
      a.get("brokers").forEach(b -> brokers.add(b.asInt()));
      Map<String, Object> out = new TreeMap<>();
      admin().describeLogDirs(brokers).allDescriptions().get().forEach((broker, dirs) -> {
        Map<String, Object> perDir = new TreeMap<>();
        dirs.forEach((path, d) -> {
          Map<String, Object> desc = new LinkedHashMap<>();
          desc.put("error", d.error() == null ? null : d.error().getClass().getSimpleName());
          Map<String, Object> replicas = new TreeMap<>();
          d.replicaInfos().forEach((tp, ri) -> replicas.put(tp.topic() + "/" + tp.partition(),
              Map.of("size", ri.size(), "offsetLag", ri.offsetLag(), "isFuture", ri.isFuture())));
          desc.put("replicas", replicas);
          desc.put("totalBytes", d.totalBytes().isPresent() ? d.totalBytes().getAsLong() : null);
          desc.put("usableBytes", d.usableBytes().isPresent() ? d.usableBytes().getAsLong() : null);
          perDir.put(path, desc);
        });
        out.put(String.valueOf(broker), perDir);
      });
      return out;
    });
    ops.put("admin.describeReplicaLogDirs", a -> {
      String topic = a.get("topic").asText();
      List<TopicPartitionReplica> reps = new ArrayList<>();
      a.get("partitions").forEach(p -> reps.add(new TopicPartitionReplica(topic, p.asInt(), a.get("broker").asInt())));
      return each(admin().describeReplicaLogDirs(reps).values(), r -> String.valueOf(r.partition()),
          info -> info.getCurrentReplicaLogDir());
    });
    ops.put("admin.describeMetadataQuorum", a -> quorum(admin().describeMetadataQuorum().quorumInfo().get()));
    ops.put("admin.describeFeatures", a -> {
      var f = admin().describeFeatures().featureMetadata().get();
      Map<String, Object> out = new LinkedHashMap<>();
      Map<String, Object> finalized = new TreeMap<>();
      f.finalizedFeatures().forEach((k, v) -> finalized.put(k, List.of(v.minVersionLevel(), v.maxVersionLevel())));
      Map<String, Object> supported = new TreeMap<>();
      f.supportedFeatures().forEach((k, v) -> supported.put(k, List.of(v.minVersion(), v.maxVersion())));
      out.put("finalized", finalized);
      out.put("supported", supported);
      out.put("epoch", f.finalizedFeaturesEpoch().orElse(null));
      return out;
    });
    ops.put("admin.updateFeatures", a -> {
      Map<String, FeatureUpdate> req = new HashMap<>();
      a.get("features").fields().forEachRemaining(e -> req.put(e.getKey(),
          new FeatureUpdate((short) e.getValue().asInt(), FeatureUpdate.UpgradeType.UPGRADE)));
      admin().updateFeatures(req, new org.apache.kafka.clients.admin.UpdateFeaturesOptions()
          .validateOnly(a.path("validateOnly").asBoolean(false))).all().get();
      return true;
    });
    ops.put("admin.electLeaders", a -> {
      Set<TopicPartition> parts = new HashSet<>(Clients.tpList(a.get("partitions")));
      ElectionType type = ElectionType.valueOf(a.path("type").asText("PREFERRED"));
      Map<String, Object> out = new TreeMap<>();
      admin().electLeaders(type, parts).partitions().get().forEach((tp, err) -> out.put(tp.topic() + "/" + tp.partition(),
          err.map(e -> (Object) e.getClass().getSimpleName()).orElse(null)));
      return out;
    });
    ops.put("admin.alterPartitionReassignments", a -> {
      Map<TopicPartition, Optional<NewPartitionReassignment>> req = new HashMap<>();
      for (JsonNode r : a.get("reassignments")) {
        List<Integer> replicas = new ArrayList<>();
        r.get(2).forEach(b -> replicas.add(b.asInt()));
        req.put(new TopicPartition(r.get(0).asText(), r.get(1).asInt()), Optional.of(new NewPartitionReassignment(replicas)));
      }
      return each(admin().alterPartitionReassignments(req).values(), tp -> tp.topic() + "/" + tp.partition(), v -> true);
    });
    ops.put("admin.listPartitionReassignments", a -> {
      Map<String, Object> out = new TreeMap<>();
      admin().listPartitionReassignments().reassignments().get().forEach((tp, r) ->
          out.put(tp.topic() + "/" + tp.partition(), Map.of("replicas", r.replicas(), "adding", r.addingReplicas(),
              "removing", r.removingReplicas())));
      return out;
    });
    registerGroups(ops);
    registerNotYetServed(ops);
  }

  private void registerGroups(Map<String, Driver.Op> ops) {
    ops.put("admin.listGroups", a -> {
      List<Object> out = new ArrayList<>();
      admin().listGroups(new ListGroupsOptions()).all().get().forEach(g -> {
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("groupId", g.groupId());
        row.put("type", g.type().map(Enum::name).orElse(null));
        row.put("protocol", g.protocol());
        row.put("state", g.groupState().map(Enum::name).orElse(null));
        row.put("simple", g.isSimpleConsumerGroup());
        out.add(row);
      });
      return out;
    });
    ops.put("admin.describeConsumerGroups", a -> each(admin().describeConsumerGroups(strings(a.get("groups")))
        .describedGroups(), k -> k, g -> {
          Map<String, Object> out = new LinkedHashMap<>();
          out.put("groupId", g.groupId());
          out.put("simple", g.isSimpleConsumerGroup());
          out.put("type", g.type().name());
          out.put("state", g.groupState().name());
          out.put("assignor", g.partitionAssignor());
          out.put("coordinator", node(g.coordinator()));
          out.put("groupEpoch", g.groupEpoch().orElse(null));
          List<Object> members = new ArrayList<>();
          g.members().forEach(mem -> {
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("memberId", mem.consumerId());
            row.put("instanceId", mem.groupInstanceId().orElse(null));
            row.put("clientId", mem.clientId());
            row.put("host", mem.host());
            row.put("assignment", Clients.tps(mem.assignment().topicPartitions()));
            row.put("memberEpoch", mem.memberEpoch().orElse(null));
            row.put("upgraded", mem.upgraded().orElse(null));
            members.add(row);
          });
          members.sort((x, y) -> x.toString().compareTo(y.toString()));
          out.put("members", members);
          return out;
        }));
    ops.put("admin.listConsumerGroupOffsets", a -> {
      String group = a.get("group").asText();
      Map<String, Object> out = new TreeMap<>();
      admin().listConsumerGroupOffsets(Map.of(group, new ListConsumerGroupOffsetsSpec())).partitionsToOffsetAndMetadata(group)
          .get().forEach((tp, om) -> out.put(tp.topic() + "/" + tp.partition(),
              om == null ? null : Map.of("offset", om.offset(), "metadata", om.metadata(),
                  "leaderEpoch", om.leaderEpoch().orElse(-1))));
      return out;
    });
    ops.put("admin.alterConsumerGroupOffsets", a -> {
      Map<TopicPartition, OffsetAndMetadata> req = new HashMap<>();
      for (JsonNode o : a.get("offsets")) {
        req.put(new TopicPartition(o.get(0).asText(), o.get(1).asInt()), new OffsetAndMetadata(o.get(2).asLong()));
      }
      var r = admin().alterConsumerGroupOffsets(a.get("group").asText(), req);
      Map<String, Object> out = new TreeMap<>();
      for (TopicPartition tp : req.keySet()) out.put(tp.topic() + "/" + tp.partition(), outcome(r.partitionResult(tp), v -> true));
      return out;
    });
    ops.put("admin.deleteConsumerGroupOffsets", a -> {
      Set<TopicPartition> parts = new HashSet<>(Clients.tpList(a.get("partitions")));
      var r = admin().deleteConsumerGroupOffsets(a.get("group").asText(), parts);
      Map<String, Object> out = new TreeMap<>();
      for (TopicPartition tp : parts) out.put(tp.topic() + "/" + tp.partition(), outcome(r.partitionResult(tp), v -> true));
      return out;
    });
    ops.put("admin.deleteConsumerGroups", a ->
        each(admin().deleteConsumerGroups(strings(a.get("groups"))).deletedGroups(), k -> k, v -> true));
    ops.put("admin.removeMembersFromConsumerGroup", a -> {
      var opts = a.has("instances")
          ? new RemoveMembersFromConsumerGroupOptions(strings(a.get("instances")).stream().map(MemberToRemove::new).toList())
          : new RemoveMembersFromConsumerGroupOptions();
      admin().removeMembersFromConsumerGroup(a.get("group").asText(), opts).all().get();
      return true;
    });
  }

  /** Calls of APIs the broker does not serve yet: each answers with the exception the client raises. */
  private void registerNotYetServed(Map<String, Driver.Op> ops) {
    ops.put("admin.describeAcls", a -> admin().describeAcls(AclBindingFilter.ANY).values().get().size());
    ops.put("admin.createAcls", a -> {
      List<AclBinding> bindings = new ArrayList<>();
      a.get("acls").forEach(b -> bindings.add(binding(b)));
      admin().createAcls(bindings).all().get();
      return null;
    });
    ops.put("admin.describeAclBindings", a -> {
      List<Object> out = new ArrayList<>();
      admin().describeAcls(bindingFilter(a.get("filter"))).values().get().forEach(b -> out.add(acl(b)));
      return out;
    });
    ops.put("admin.deleteAcls", a -> {
      List<Object> out = new ArrayList<>();
      admin().deleteAcls(List.of(bindingFilter(a.get("filter")))).all().get().forEach(b -> out.add(acl(b)));
      return out;
    });
    ops.put("admin.describeUserScramCredentials", a -> admin().describeUserScramCredentials().all().get().size());
    ops.put("admin.describeClientQuotas", a -> admin().describeClientQuotas(ClientQuotaFilter.all()).entities().get().size());
    ops.put("admin.listTransactions", a -> admin().listTransactions().all().get().size());
    ops.put("admin.describeProducers", a ->
        admin().describeProducers(Clients.tpList(a.get("partitions"))).all().get().size());
  }

  // -- topics and configs --------------------------------------------------------------------------

  private Object createTopics(JsonNode a) throws Exception {
    List<NewTopic> topics = new ArrayList<>();
    for (JsonNode t : a.get("topics")) {
      NewTopic nt;
      if (t.has("assignments")) {
        Map<Integer, List<Integer>> assign = new HashMap<>();
        t.get("assignments").fields().forEachRemaining(e -> {
          List<Integer> replicas = new ArrayList<>();
          e.getValue().forEach(b -> replicas.add(b.asInt()));
          assign.put(Integer.parseInt(e.getKey()), replicas);
        });
        nt = new NewTopic(t.get("name").asText(), assign);
      } else {
        nt = new NewTopic(t.get("name").asText(),
            t.has("partitions") ? Optional.of(t.get("partitions").asInt()) : Optional.empty(),
            t.has("replicationFactor") ? Optional.of((short) t.get("replicationFactor").asInt()) : Optional.empty());
      }
      Map<String, String> configs = new HashMap<>();
      t.path("configs").fields().forEachRemaining(e -> configs.put(e.getKey(), e.getValue().asText()));
      topics.add(nt.configs(configs));
    }
    var r = admin().createTopics(topics, new CreateTopicsOptions().validateOnly(a.path("validateOnly").asBoolean(false)));
    Map<String, Object> out = new TreeMap<>();
    for (NewTopic t : topics) {
      String name = t.name();
      out.put(name, outcome(r.values().get(name), v -> {
        Map<String, Object> created = new LinkedHashMap<>();
        created.put("partitions", get(r.numPartitions(name)));
        created.put("replicationFactor", get(r.replicationFactor(name)));
        created.put("topicId", a.path("validateOnly").asBoolean(false) ? null : String.valueOf(get(r.topicId(name))));
        return created;
      }));
    }
    return out;
  }

  private Object describeConfigs(JsonNode a) throws Exception {
    List<ConfigResource> resources = new ArrayList<>();
    for (JsonNode r : a.get("resources")) {
      resources.add(new ConfigResource(ConfigResource.Type.valueOf(r.get(0).asText()), r.get(1).asText()));
    }
    var opts = new DescribeConfigsOptions().includeSynonyms(a.path("synonyms").asBoolean(false))
        .includeDocumentation(a.path("documentation").asBoolean(false));
    return each(admin().describeConfigs(resources, opts).values(), r -> r.type() + "/" + r.name(), cfg -> {
      Map<String, Object> entries = new TreeMap<>();
      for (ConfigEntry e : cfg.entries()) {
        Map<String, Object> entry = new LinkedHashMap<>();
        entry.put("value", e.value());
        entry.put("source", e.source().name());
        entry.put("isDefault", e.isDefault());
        entry.put("readOnly", e.isReadOnly());
        entry.put("sensitive", e.isSensitive());
        entry.put("type", e.type().name());
        List<Object> synonyms = new ArrayList<>();
        e.synonyms().forEach(s -> synonyms.add(java.util.Arrays.asList(s.name(), s.value(), s.source().name())));
        entry.put("synonyms", synonyms);
        if (e.documentation() != null) entry.put("documentation", e.documentation());
        entries.put(e.name(), entry);
      }
      return entries;
    });
  }

  private Object incrementalAlterConfigs(JsonNode a) throws Exception {
    Map<ConfigResource, java.util.Collection<AlterConfigOp>> req = new HashMap<>();
    for (JsonNode r : a.get("resources")) {
      List<AlterConfigOp> alter = new ArrayList<>();
      for (JsonNode op : r.get("ops")) {
        alter.add(new AlterConfigOp(new ConfigEntry(op.get(1).asText(), op.get(2).isNull() ? null : op.get(2).asText()),
            AlterConfigOp.OpType.valueOf(op.get(0).asText())));
      }
      req.put(new ConfigResource(ConfigResource.Type.valueOf(r.get("type").asText()), r.get("name").asText()), alter);
    }
    return each(admin().incrementalAlterConfigs(req, new org.apache.kafka.clients.admin.AlterConfigsOptions()
        .validateOnly(a.path("validateOnly").asBoolean(false))).values(), r -> r.type() + "/" + r.name(), v -> true);
  }

  private Object listOffsets(JsonNode a) throws Exception {
    String topic = a.get("topic").asText();
    Map<TopicPartition, OffsetSpec> req = new HashMap<>();
    a.get("specs").fields().forEachRemaining(e -> {
      JsonNode s = e.getValue();
      OffsetSpec spec = switch (s.isNumber() ? "ts" : s.asText()) {
        case "earliest" -> OffsetSpec.earliest();
        case "latest" -> OffsetSpec.latest();
        case "maxTimestamp" -> OffsetSpec.maxTimestamp();
        case "earliestLocal" -> OffsetSpec.earliestLocal();
        case "latestTiered" -> OffsetSpec.latestTiered();
        case "earliestPendingUpload" -> OffsetSpec.earliestPendingUpload();
        default -> OffsetSpec.forTimestamp(s.asLong());
      };
      req.put(new TopicPartition(topic, Integer.parseInt(e.getKey())), spec);
    });
    return each(futures(req.keySet(), admin().listOffsets(req)), tp -> String.valueOf(tp.partition()),
        info -> Map.of("offset", info.offset(), "timestamp", info.timestamp(), "leaderEpoch", info.leaderEpoch().orElse(-1)));
  }

  private static Map<TopicPartition, KafkaFuture<org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo>>
      futures(Set<TopicPartition> parts, org.apache.kafka.clients.admin.ListOffsetsResult r) {
    Map<TopicPartition, KafkaFuture<org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo>> out = new HashMap<>();
    for (TopicPartition tp : parts) out.put(tp, r.partitionResult(tp));
    return out;
  }

  // -- JSON shapes -----------------------------------------------------------------------------------

  static Map<String, Object> topic(TopicDescription d) {
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("name", d.name());
    out.put("topicId", d.topicId().toString());
    out.put("internal", d.isInternal());
    List<Object> parts = new ArrayList<>();
    for (TopicPartitionInfo p : d.partitions()) {
      Map<String, Object> row = new LinkedHashMap<>();
      row.put("partition", p.partition());
      row.put("leader", p.leader() == null ? null : p.leader().id());
      row.put("replicas", p.replicas().stream().map(Node::id).toList());
      row.put("isr", p.isr().stream().map(Node::id).toList());
      row.put("elr", p.elr() == null ? null : p.elr().stream().map(Node::id).toList());
      parts.add(row);
    }
    out.put("partitions", parts);
    return out;
  }

  static Map<String, Object> node(Node n) {
    if (n == null || n.isEmpty()) return null;
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("id", n.id());
    out.put("host", n.host());
    out.put("port", n.port());
    out.put("rack", n.rack());
    return out;
  }

  static Map<String, Object> quorum(QuorumInfo q) {
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("leaderId", q.leaderId());
    out.put("leaderEpoch", q.leaderEpoch());
    out.put("highWatermark", q.highWatermark());
    Function<QuorumInfo.ReplicaState, Object> replica = r -> {
      Map<String, Object> row = new LinkedHashMap<>();
      row.put("id", r.replicaId());
      row.put("logEndOffset", r.logEndOffset());
      row.put("lastFetchTimestamp", r.lastFetchTimestamp().isPresent() ? r.lastFetchTimestamp().getAsLong() : null);
      row.put("lastCaughtUpTimestamp", r.lastCaughtUpTimestamp().isPresent() ? r.lastCaughtUpTimestamp().getAsLong() : null);
      return row;
    };
    out.put("voters", q.voters().stream().map(replica).toList());
    out.put("observers", q.observers().stream().map(replica).toList());
    return out;
  }

  // -- per-item outcomes ---------------------------------------------------------------------------

  interface Shape<V> {
    Object apply(V value) throws Exception;
  }

  static <K, V> Map<String, Object> each(Map<K, KafkaFuture<V>> futures, Function<K, String> key, Shape<V> shape) {
    Map<String, Object> out = new TreeMap<>();
    futures.forEach((k, f) -> out.put(key.apply(k), outcome(f, shape)));
    return out;
  }

  static <V> Map<String, Object> outcome(KafkaFuture<V> f, Shape<V> shape) {
    try {
      return java.util.Collections.singletonMap("value", shape.apply(f.get()));
    } catch (Exception e) {
      Throwable t = Driver.unwrap(e);
      return Map.of("error", Map.of("type", t.getClass().getSimpleName(), "message", String.valueOf(t.getMessage())));
    }
  }

  static <V> V get(KafkaFuture<V> f) throws Exception {
    return f.get();
  }

  static List<String> strings(JsonNode array) {
    List<String> out = new ArrayList<>();
    array.forEach(s -> out.add(s.asText()));
    return out;
  }

  // -- ACLs: {resourceType, name, patternType, principal, host, operation, permission}, Kafka's enum names --

  private static AclBinding binding(JsonNode b) {
    return new AclBinding(
        new ResourcePattern(ResourceType.fromString(b.get("resourceType").asText()), b.get("name").asText(),
            PatternType.fromString(b.path("patternType").asText("LITERAL"))),
        new AccessControlEntry(b.get("principal").asText(), b.path("host").asText("*"),
            AclOperation.fromString(b.get("operation").asText()),
            AclPermissionType.fromString(b.path("permission").asText("ALLOW"))));
  }

  /** A filter: what the object leaves out matches anything. */
  private static AclBindingFilter bindingFilter(JsonNode f) {
    return new AclBindingFilter(
        new ResourcePatternFilter(ResourceType.fromString(f.path("resourceType").asText("ANY")),
            f.hasNonNull("name") ? f.get("name").asText() : null,
            PatternType.fromString(f.path("patternType").asText("ANY"))),
        new AccessControlEntryFilter(f.hasNonNull("principal") ? f.get("principal").asText() : null,
            f.hasNonNull("host") ? f.get("host").asText() : null,
            AclOperation.fromString(f.path("operation").asText("ANY")),
            AclPermissionType.fromString(f.path("permission").asText("ANY"))));
  }

  private static Map<String, Object> acl(AclBinding b) {
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("resourceType", b.pattern().resourceType().name());
    out.put("name", b.pattern().name());
    out.put("patternType", b.pattern().patternType().name());
    out.put("principal", b.entry().principal());
    out.put("host", b.entry().host());
    out.put("operation", b.entry().operation().name());
    out.put("permission", b.entry().permissionType().name());
    return out;
  }
}
