import { describeRobustness } from '../support/robustness-cases';
import { splitFilesystemTarget } from '../support/robustness-stack';

// One process per app on the filesystem; a second blob-upload is started where a case needs one.
describeRobustness('split mode robustness on the filesystem: restarts, kills, concurrency and bad input', splitFilesystemTarget);
