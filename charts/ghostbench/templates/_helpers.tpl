{{/*
Names and labels, as prometheus-community's charts make them.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "ghostbench.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The fully qualified name: release-chart, or the release name alone when it contains the chart name.
Cut to 43 characters: the controller Job adds "-controller-xxxxxxxx" and names stay <= 63.
*/}}
{{- define "ghostbench.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 43 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 43 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 43 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* chart-version, for the helm.sh/chart label. */}}
{{- define "ghostbench.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object of the release. */}}
{{- define "ghostbench.labels" -}}
helm.sh/chart: {{ include "ghostbench.chart" . }}
{{ include "ghostbench.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ghostbench
{{- end }}

{{/* Labels that select the release's pods. */}}
{{- define "ghostbench.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ghostbench.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The controller's service account. */}}
{{- define "ghostbench.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ghostbench.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* An image reference: (dict "image" .Values.images.cpu "root" .) */}}
{{- define "ghostbench.image" -}}
{{- $registry := .root.Values.images.registry -}}
{{- $tag := default .root.Chart.AppVersion .image.tag -}}
{{- if $registry }}{{ printf "%s/%s:%s" $registry .image.repository $tag }}{{ else }}{{ printf "%s:%s" .image.repository $tag }}{{ end }}
{{- end }}

{{/* s3://bucket[/prefix], the sweep's store. */}}
{{- define "ghostbench.storeUri" -}}
{{- if .Values.store.prefix }}{{ printf "s3://%s/%s" .Values.store.bucket .Values.store.prefix }}{{ else }}{{ printf "s3://%s" .Values.store.bucket }}{{ end }}
{{- end }}

{{/* The ConfigMap with the store's environment (endpoint, region). */}}
{{- define "ghostbench.storeConfigMapName" -}}
{{- printf "%s-store" (include "ghostbench.fullname" .) }}
{{- end }}

{{/* The Secret with the store's keys, or nothing when pods get access from a role. */}}
{{- define "ghostbench.storeSecretName" -}}
{{- if .Values.store.credentials.existingSecret }}
{{- .Values.store.credentials.existingSecret }}
{{- else if .Values.store.credentials.create }}
{{- printf "%s-store" (include "ghostbench.fullname" .) }}
{{- end }}
{{- end }}

{{/* Environment of the controller and test pods: plain settings, and the store's keys by reference. */}}
{{- define "ghostbench.env" -}}
- name: PYTHONUNBUFFERED
  value: "1"
- name: HOME
  value: /home/ghostbench
- name: TMPDIR
  value: /tmp
{{- $secret := include "ghostbench.storeSecretName" . }}
{{- if $secret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .Values.store.credentials.accessKeyIdKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .Values.store.credentials.secretAccessKeyKey }}
{{- end }}
{{- end }}

{{/* The restricted pod security context (Pod Security Standards "restricted"). */}}
{{- define "ghostbench.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The restricted container security context. */}}
{{- define "ghostbench.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop:
    - ALL
{{- end }}

{{/* The sweep file the controller runs: the values' sweep with the store set. */}}
{{- define "ghostbench.sweep" -}}
{{- $sweep := deepCopy .Values.sweep }}
{{- $_ := set $sweep "store" (include "ghostbench.storeUri" .) }}
{{- toYaml $sweep }}
{{- end }}

{{/* The controller's Kubernetes settings (controller/kubernetes/manifests.py KubernetesSettings). */}}
{{- define "ghostbench.settings" -}}
{{- $images := dict
  "cpu" (include "ghostbench.image" (dict "image" .Values.images.cpu "root" .))
  "atc" (include "ghostbench.image" (dict "image" .Values.images.atc "root" .))
  "ascend-infer" (include "ghostbench.image" (dict "image" .Values.images.ascendInfer "root" .))
  "gpu-infer" (include "ghostbench.image" (dict "image" .Values.images.gpuInfer "root" .)) }}
{{- $settings := dict
  "namespace" .Release.Namespace
  "instance" .Release.Name
  "images" $images
  "image_pull_policy" .Values.images.pullPolicy
  "image_pull_secrets" .Values.images.pullSecrets
  "service_account" .Values.steps.serviceAccountName
  "store_config_map" (include "ghostbench.storeConfigMapName" .)
  "store_secret" (include "ghostbench.storeSecretName" .)
  "store_secret_keys" (dict "AWS_ACCESS_KEY_ID" .Values.store.credentials.accessKeyIdKey "AWS_SECRET_ACCESS_KEY" .Values.store.credentials.secretAccessKeyKey)
  "scheduler_name" .Values.accelerators.schedulerName
  "scheduler_annotations" .Values.accelerators.schedulerAnnotations
  "node_selector" .Values.steps.nodeSelector
  "tolerations" .Values.steps.tolerations
  "resources" .Values.steps.resources
  "max_running" .Values.steps.maxRunning
  "max_running_default" .Values.steps.maxRunningDefault
  "preprocess_parallelism" .Values.steps.preprocessParallelism
  "driver_mounts" .Values.accelerators.driverMounts
  "supplemental_groups" .Values.accelerators.supplementalGroups
  "run_as_user" .Values.securityContext.runAsUser
  "run_as_group" .Values.securityContext.runAsGroup
  "scratch_size_limit" .Values.steps.scratchSizeLimit
  "backoff_limit" .Values.steps.backoffLimit
  "active_deadline_seconds" .Values.steps.activeDeadlineSeconds
  "ttl_seconds_after_finished" .Values.steps.ttlSecondsAfterFinished
  "pod_start_timeout_seconds" .Values.steps.podStartTimeoutSeconds
  "unschedulable_timeout_seconds" .Values.steps.unschedulableTimeoutSeconds
  "queue_name" .Values.steps.queueName
  "priority_class_name" .Values.steps.priorityClassName
  "affinity" .Values.steps.affinity
  "pod_labels" .Values.steps.podLabels
  "pod_annotations" .Values.steps.podAnnotations
  "per_index_backoff" .Values.steps.perIndexBackoff
  "max_failed_shards" .Values.steps.maxFailedShards
  "device_resources" .Values.accelerators.resources }}
{{- toYaml $settings }}
{{- end }}
