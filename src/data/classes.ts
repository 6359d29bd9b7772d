// Fashion-MNIST's ten classes, in label order: the one place they are written.
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
