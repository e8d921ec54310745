{{/* Chart name, truncated to the 63 characters a label allows. */}}
{{- define "recengine.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: release name, plus the chart name unless it is already in it. */}}
{{- define "recengine.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "recengine.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "recengine.labels" -}}
helm.sh/chart: {{ include "recengine.chart" . }}
{{ include "recengine.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the API pods. */}}
{{- define "recengine.selectorLabels" -}}
app.kubernetes.io/name: {{ include "recengine.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "recengine.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* Name of the Secret holding the database URL, Redis URL and admin API key. */}}
{{- define "recengine.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else }}
{{- include "recengine.fullname" . }}
{{- end }}
{{- end }}

{{/* The container port: config.port. */}}
{{- define "recengine.port" -}}
{{- .Values.config.port | default 8000 | int }}
{{- end }}

{{/* Fail early on settings that cannot work. */}}
{{- define "recengine.validate" -}}
{{- if not .Values.secrets.existingSecret }}
{{- if not .Values.secrets.databaseUrl }}
{{- fail "secrets.databaseUrl is required (postgresql+asyncpg://USER:PASSWORD@HOST:5432/DB), or set secrets.existingSecret" }}
{{- end }}
{{- if not .Values.secrets.redisUrl }}
{{- fail "secrets.redisUrl is required (redis://HOST:6379/0): replicas must share one cache; or set secrets.existingSecret" }}
{{- end }}
{{- end }}
{{- $shutdown := .Values.config.shutdown_timeout_seconds | default 20 | int }}
{{- $needed := add $shutdown (.Values.preStopSleepSeconds | int) }}
{{- if le (.Values.terminationGracePeriodSeconds | int) $needed }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds + config.shutdown_timeout_seconds (%d)" (.Values.terminationGracePeriodSeconds | int) $needed) }}
{{- end }}
{{- end }}

{{/* Non-secret RECENGINE_* settings as a map: config.<name> -> RECENGINE_<NAME>. */}}
{{- define "recengine.configData" -}}
{{- range $key, $value := .Values.config }}
{{ printf "RECENGINE_%s" (upper $key) }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/* Non-secret settings as env entries: for hook Jobs, which run before the ConfigMap exists. */}}
{{- define "recengine.configEnv" -}}
{{- range $key, $value := .Values.config }}
- name: {{ printf "RECENGINE_%s" (upper $key) }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/* Secret settings as env entries; the secret name is the argument "secret". */}}
{{- define "recengine.secretEnv" -}}
- name: RECENGINE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: database-url
- name: RECENGINE_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: redis-url
- name: RECENGINE_ADMIN_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: admin-api-key
      optional: true
- name: RECENGINE_TOKEN_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: token-secret
- name: RECENGINE_DATABASE_READ_URLS
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: database-read-urls
      optional: true
{{- with .root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The pods' ServiceAccount: the created one (named serviceAccount.name or the fullname), else an existing one. */}}
{{- define "recengine.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "recengine.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Pod-level settings shared by the Deployment, the migration Job and the CronJob. */}}
{{- define "recengine.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with include "recengine.serviceAccountName" . }}
serviceAccountName: {{ . }}
{{- end }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountToken }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Writable emptyDir volumes: the root filesystem is read-only. */}}
{{- define "recengine.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
- name: data
  emptyDir:
    sizeLimit: {{ .Values.dataSizeLimit }}
{{- end }}

{{- define "recengine.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: {{ .Values.config.data_dir | default "/var/lib/recengine" }}
{{- end }}
