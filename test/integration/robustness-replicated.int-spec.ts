import { describeRobustness } from '../support/robustness-cases';
import { replicatedS3Target } from '../support/robustness-stack';

// Two replicas each of gateway, blob-upload and manifests behind balancers, on MinIO: the same
// cases, a replica at a time restarted or killed while the other one serves.
describeRobustness('replicated split mode robustness on MinIO: restarts, kills, concurrency and bad input', replicatedS3Target);
