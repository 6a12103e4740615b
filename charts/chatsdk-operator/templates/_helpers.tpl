{{- define "chatsdk-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "chatsdk-operator.labels" -}}
app.kubernetes.io/name: chatsdk-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "chatsdk-operator.selector" -}}
app.kubernetes.io/name: chatsdk-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "chatsdk-operator.serviceAccountName" -}}
{{- default (include "chatsdk-operator.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}
