export * from '../../src/devpki/pki.js';
