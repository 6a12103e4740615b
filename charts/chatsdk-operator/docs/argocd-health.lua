-- Argo CD health check for chatsdk.io/ChatSDKDeployment.
-- Healthy when Ready=True for the current generation; Progressing while the operator has not
-- observed the latest spec or is rolling out; Degraded when the operator reports a failure.
local hs = {}
if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "The operator has not yet observed generation " .. tostring(generation)
  return hs
end
local ready = nil
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Ready" then
      ready = condition
    end
  end
end
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end
local message = ready.message or ""
if ready.status == "True" then
  hs.status = "Healthy"
elseif obj.status.phase == "Failed" or obj.status.phase == "Degraded" then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
hs.message = message
return hs
