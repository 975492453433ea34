// The Enketo web client as one browser script: enketo-transformer's web build turns an
// XForm into Enketo's HTML form and model (with the browser's XSLT), enketo-core runs it.
import { Form } from 'enketo-core';
import { transform } from 'enketo-transformer/web';

window.EnketoForm = Form;
window.enketoTransform = transform;
