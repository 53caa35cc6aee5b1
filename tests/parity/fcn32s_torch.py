"""FCN32s reference module, exactly as HW1-SPEC.md's "FCN32s" paragraph (the report's printed model)."""
import torch
from torch import nn
from torchvision.models import vgg16


class FCN32s(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.features = vgg16(weights=None).features  # keys features.N.*, torchvision's VGG init
        self.fc6 = nn.Conv2d(512, 4096, 1)
        self.drop6 = nn.Dropout2d(0.5)  # parameter-free, so absent from state_dict()
        self.fc7 = nn.Conv2d(4096, 4096, 1)
        self.drop7 = nn.Dropout2d(0.5)
        self.score_fr = nn.Conv2d(4096, num_classes, 1)
        self.upscore = nn.ConvTranspose2d(num_classes, num_classes, 64, stride=32, bias=False)
        self.reset_head()

    def reset_head(self):
        """Variance-preserving head init (PyTorch's default shrinks the output ~1e3-fold over four layers).

        upscore starts as per-class bilinear upsampling, as in the FCN paper, plus noise so that
        cross-class mixing is exercised by the parity tests.
        """
        with torch.no_grad():
            for conv in (self.fc6, self.fc7, self.score_fr):
                nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            k = self.upscore.kernel_size[0]
            c = (k - 1) / 2
            t = 1 - (torch.arange(k) - c).abs() / (k // 2)
            w = self.upscore.weight
            w.normal_(0, 0.1)
            for i in range(w.shape[0]):
                w[i, i] += t[:, None] * t[None, :]

    def forward(self, x):
        h, w = x.shape[-2:]
        y = self.features(x)
        y = self.drop6(torch.relu(self.fc6(y)))
        y = self.drop7(torch.relu(self.fc7(y)))
        y = self.upscore(self.score_fr(y))
        # 16 = geometric centre alignment for kernel 64 / stride 32; min() keeps any H, W >= 32 valid.
        oy, ox = min(16, y.shape[-2] - h), min(16, y.shape[-1] - w)
        return y[..., oy : oy + h, ox : ox + w]
