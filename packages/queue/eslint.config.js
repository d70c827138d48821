import config from '@brats/eslint-config';

export default config;
