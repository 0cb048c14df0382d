/** The landing page: where each kind of user goes. */
import { startPage } from '../lib/shell.js';

startPage();
