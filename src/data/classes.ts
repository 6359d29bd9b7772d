// Fashion-MNIST's ten classes, in label order: the one place they are written. A model's class count
// is its output width (Trainer.classes; the language's default is dsl/checker.ts's DEFAULT_CLASSES).
export const CLASS_NAMES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;
export const NUM_CLASSES = CLASS_NAMES.length;
