"""Real metadata shared with Stable Diffusion images, with where each sample comes from, and what it says.

Test data for tests/test_readers.py. Each sample is copied verbatim from a public source (noted beside
it) except where the note says what was changed (Markdown line breaks removed). Images are never copied:
the tests write the chunks themselves, the way each tool does.

`expect` lists settings (difftool.readers vocabulary) that the parse must give; `not_honoured` lists keys
that `to_spec_fields` must report.
"""

from __future__ import annotations

from typing import Any

#: A1111-format infotexts (A1111, Forge, civitai-era model cards): name -> sample.
INFOTEXTS: dict[str, dict[str, Any]] = {
    "sd-parsers duck (A1111, UniPC)": {
        "origin": "github.com/d3x-at/sd-parsers tests/test_automatic1111.py (PARAMETERS), the `parameters` chunk of tests/resources/parsers/AUTOMATIC1111/automatic1111_cropped.png",
        "text": (
            "photo of a duck\n"
            "Negative prompt: monochrome\n"
            "Steps: 15, Sampler: UniPC, CFG scale: 5, Seed: 235284042, Size: 512x400, Model hash: c0d1994c73, Model: realistic_realisticVisionV20_v20"
        ),
        "source": "a1111",
        "expect": {
            "prompt": "photo of a duck",
            "negative": "monochrome",
            "steps": 15,
            "guidance": 5.0,
            "seed": 235284042,
            "width": 512,
            "height": 400,
            "scheduler": "unipc",
            "model": "realistic_realisticVisionV20_v20",
        },
        "not_honoured": ["Model hash"],
    },
    "sd-parsers stealth (A1111 1.9, Schedule type, Clip skip)": {
        "origin": "github.com/d3x-at/sd-parsers tests/resources/parsers/AUTOMATIC1111/automatic1111_stealth.png: its stealth_pngcomp alpha-channel payload, decoded (fields listed in automatic1111_stealth.py beside it)",
        "text": (
            "a circle\n"
            "Negative prompt: a square\n"
            "Steps: 20, Sampler: Euler, Schedule type: Automatic, CFG scale: 7, Seed: 2015833630, Size: 64x64, Model hash: 15012c538f, Model: realisticVisionV51_v51VAE, Clip skip: 2, Version: v1.9.4-169-ga30b19dd"
        ),
        "source": "a1111",
        "expect": {
            "prompt": "a circle",
            "negative": "a square",
            "steps": 20,
            "scheduler": "euler",
            "seed": 2015833630,
            "clip_skip": 1,
            "width": 64,
            "height": 64,
        },
        "not_honoured": ["Model hash"],
    },
    "layerdiffuse apple (Forge, DPM++ 2M SDE Karras, extension keys)": {
        "origin": "github.com/lllyasviel/sd-forge-layerdiffuse README.md (commit b1e66511), first example; the blank lines Markdown needs between the three lines removed",
        "text": (
            "an apple, high quality\n"
            "Negative prompt: bad, ugly\n"
            "Steps: 20, Sampler: DPM++ 2M SDE Karras, CFG scale: 5, Seed: 12345, Size: 1024x1024, Model hash: 1fe6c7ec54, Model: juggernautXL_version6Rundiffusion, layerdiffusion_enabled: True, layerdiffusion_method: Only Generate Transparent Image (Attention Injection), layerdiffusion_weight: 1, layerdiffusion_ending_step: 1, layerdiffusion_fg_image: False, layerdiffusion_bg_image: False, layerdiffusion_blend_image: False, layerdiffusion_resize_mode: Crop and Resize, Version: f0.0.17v1.8.0rc-latest-269-gef35383b"
        ),
        "source": "forge",
        "expect": {
            "prompt": "an apple, high quality",
            "negative": "bad, ugly",
            "steps": 20,
            "guidance": 5.0,
            "seed": 12345,
            "width": 1024,
            "height": 1024,
            "scheduler": "dpm++2m-sde-karras",
            "model": "juggernautXL_version6Rundiffusion",
        },
        "not_honoured": [
            "Model hash",
            "layerdiffusion_bg_image",
            "layerdiffusion_blend_image",
            "layerdiffusion_enabled",
            "layerdiffusion_ending_step",
            "layerdiffusion_fg_image",
            "layerdiffusion_method",
            "layerdiffusion_resize_mode",
            "layerdiffusion_weight",
        ],
    },
    "layerdiffuse dog (Forge, empty values)": {
        "origin": "github.com/lllyasviel/sd-forge-layerdiffuse README.md (commit b1e66511), 'Some more examples', verbatim",
        "text": (
            "high quality, 4k\n"
            "Negative prompt: nsfw, bad, ugly\n"
            "Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 12345, Size: 512x640, Model hash: 15012c538f, Model: realisticVisionV51_v51VAE, layerdiffusion_enabled: True, layerdiffusion_method: (SD1.5) Generate Everything Together, layerdiffusion_weight: 1, layerdiffusion_ending_step: 1, layerdiffusion_fg_image: False, layerdiffusion_bg_image: False, layerdiffusion_blend_image: False, layerdiffusion_resize_mode: Crop and Resize, layerdiffusion_fg_additional_prompt: dog running, layerdiffusion_bg_additional_prompt: street, layerdiffusion_blend_additional_prompt: dog running in street, Version: f0.0.17v1.8.0rc-latest-276-g29be1da7"
        ),
        "source": "forge",
        "expect": {
            "prompt": "high quality, 4k",
            "negative": "nsfw, bad, ugly",
            "scheduler": "dpm++2m-karras",
            "width": 512,
            "height": 640,
            "model": "realisticVisionV51_v51VAE",
        },
        "not_honoured": None,
    },
    "prompt utilities (A1111, no model)": {
        "origin": "github.com/hallatore/stable-diffusion-webui-prompt-utilities README.md, 'Prompt reducer' example; the 4-space Markdown indent removed",
        "text": (
            "sports car, Porsche, masterpiece, best quality, epic lighting\n"
            "Negative prompt: text, b&w, weird colors, (cartoon, 3d, bad art, poorly drawn, close up, blurry, disfigured, deformed, extra limbs:1.5)\n"
            "Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 5, Seed: 1960802277, Size: 768x512"
        ),
        "source": "a1111",
        "expect": {
            "prompt": "sports car, Porsche, masterpiece, best quality, epic lighting",
            "steps": 30,
            "scheduler": "dpm++2m-karras",
            "guidance": 5.0,
            "seed": 1960802277,
            "width": 768,
            "height": 512,
        },
        "not_honoured": [],
    },
    "Meina V10, SDE Karras (A1111 1.2, keys in another order, hires)": {
        "origin": "github.com/wudg/blogs source/_posts/AI_SD出图记录.md, 【提示词1】",
        "text": (
            "colorful, 1girl, white hair, purple eyes, dual wielding, sword, holding sword, blue flames, glow, glowing weapon, light particles, wallpaper, chromatic aberration,\n"
            "Negative prompt: (worst quality, low quality:1.4), monochrome, zombie, (interlocked fingers), cleavage,\n"
            "Steps: 25, Size: 512x1024, Seed: 3212833155, Model: Meina V10 - baked VAE, Version: v1.2.1, Sampler: DPM++ SDE Karras, CFG scale: 7, Clip skip: 2, Model hash: 77b7dc4ef0, Hires steps: 15, Hires upscale: 2, Hires upscaler: R-ESRGAN 4x+ Anime6B, Denoising strength: 0.4"
        ),
        "source": "a1111",
        "expect": {
            "steps": 25,
            "width": 512,
            "height": 1024,
            "seed": 3212833155,
            "model": "Meina V10 - baked VAE",
            "scheduler": "dpm++sde-karras",
            "guidance": 7.0,
            "clip_skip": 1,
            "hires_steps": 15,
            "hires_scale": 2.0,
            "hires_upscaler": "R-ESRGAN 4x+ Anime6B",
            "hires_denoise": 0.4,
        },
        "not_honoured": ["Model hash"],
    },
    "Meina V10, 2M Karras (A1111 1.2)": {
        "origin": "github.com/wudg/blogs source/_posts/AI_SD出图记录.md, 【提示词2】",
        "text": (
            "(masterpiece, best quality, ultra-detailed, best shadow), (detailed background,dark fantasy), (beautiful detailed face), high contrast, (best illumination, an extremely delicate and beautiful), ((cinematic light)), colorful, hyper detail, dramatic light, intricate details, (1girl, solo,black hair, sharp face,low twintails,red eyes, hair between eyes,dynamic angle), blood splatter, swirling black light around the character, depth of field,black light particles,(broken glass),magic circle,\n"
            "Negative prompt: (worst quality, low quality:1.4), zombie, (interlocked fingers),\n"
            "Steps: 25, Size: 512x1024, Seed: 1224977198, Model: Meina V10 - baked VAE, Version: v1.2.1, Sampler: DPM++ 2M Karras, CFG scale: 7, Clip skip: 2, Model hash: 77b7dc4ef0, Hires steps: 15, Hires upscale: 2, Hires upscaler: R-ESRGAN 4x+ Anime6B, Denoising strength: 0.4"
        ),
        "source": "a1111",
        "expect": {
            "seed": 1224977198,
            "scheduler": "dpm++2m-karras",
            "negative": "(worst quality, low quality:1.4), zombie, (interlocked fingers),",
        },
        "not_honoured": ["Model hash"],
    },
    "AnyPastel (A1111, ENSD, latent hires, no model name)": {
        "origin": "Hugging Face model card m4gnett/any-pastel, README.md 'Examples' (found in the search tool's code corpus)",
        "text": (
            "solo, 1girl, portrait, looking at viewer, masterpiece, best quality, 4k, 8k,\n"
            "Negative prompt: (worst quality, low quality:1.4), (bad-image-v2-39000:0.75), (bad_prompt_v2:0.85), (censored, bar censor), cropped, mature,\n"
            "Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 6, Seed: 259005813, Size: 512x768, Model hash: e8c63e365d, Denoising strength: 0.55, Clip skip: 2, ENSD: 31337, Hires upscale: 1.5, Hires upscaler: Latent (bicubic antialiased)"
        ),
        "source": "a1111",
        "expect": {
            "seed": 259005813,
            "clip_skip": 1,
            "hires_scale": 1.5,
            "hires_denoise": 0.55,
            "hires_upscaler": "Latent (bicubic antialiased)",
        },
        "not_honoured": ["ENSD", "Model hash"],
    },
    "Counterfeit-V2.0 (hand-edited Size, no seed)": {
        "origin": "Hugging Face model card gsdf/Counterfeit-V2.0 README.md, first example, as copied in github.com/Wenxin-Jiang/CS577-NLP project/model_cards/_noArch/gsdf_Counterfeit-V2.0_README.md (Markdown's trailing double spaces kept)",
        "text": (
            " ((masterpiece, best quality)),a girl, solo, hat, blush,long hair, skirt, beret, sitting, bangs, socks, wariza, pink hair, light blue eyes, black headwear,holding,rifle,weapon, looking at viewer, white sailor collar, school uniform, closed mouth, black hat, sailor collar, holding weapon, long sleeves, pleated skirt, white socks,indoors,industrial  \n"
            "Negative prompt: (low quality, worst quality:1.4), (bad anatomy), (inaccurate limb:1.2),bad composition, inaccurate eyes, extra digit,fewer digits,(extra arms:1.2),  \n"
            "Steps: 20, Sampler: DPM++ SDE Karras, CFG scale: 8, Size: 576x384 or 576x448, Denoising strength: 0.6, Clip skip: 2, Hires upscale: 2, Hires upscaler: Latent"
        ),
        "source": "a1111",
        "expect": {
            "steps": 20,
            "scheduler": "dpm++sde-karras",
            "guidance": 8.0,
            "hires_scale": 2.0,
            "hires_upscaler": "latent",
            "hires_denoise": 0.6,
            "clip_skip": 1,
        },
        "not_honoured": ["Size"],
    },
    "vicerre inpaint (A1111 1.6, DDIM, img2img strength)": {
        "origin": "github.com/vicerre/spaghetti-ice posts/2023-q4/2023-12-10_meta-014_stable-diffusion-lora.md, 'Workflow – Inpainting'",
        "text": (
            "masterpiece, 3/4 view, 1boy, solo\n"
            "Negative prompt: nsfw, lowres, 1girl, (bad anatomy:1.21), bad hands, text, error, missing fingers, extra digit, fewer digits, cropped, worst quality, low quality, normal quality, jpeg artifacts, signature, watermark, username, blurry, artist name,\n"
            "Steps: 20, Sampler: DDIM, CFG scale: 15, Seed: 3147777030, Size: 768x768, Model hash: b0006b2ccc, Denoising strength: 0.5, Mask blur: 4, Version: 1.6.1"
        ),
        "source": "a1111",
        "expect": {
            "prompt": "masterpiece, 3/4 view, 1boy, solo",
            "scheduler": "ddim",
            "guidance": 15.0,
            "seed": 3147777030,
            "strength": 0.5,
        },
        "not_honoured": ["Mask blur", "Model hash"],
    },
    "facetoanimals (A1111 1.5, DPM++ 2S a, quoted ControlNet value)": {
        "origin": "github.com/jeongminllee/facetoanimals README.md (the Markdown line-break backslash after the prompt removed)",
        "text": (
            "dog,close up, face portrait\n"
            'Steps: 20, Sampler: DPM++ 2S a, CFG scale: 7, Seed: 1934093539, Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, ControlNet 0: "Module: openpose_full, Model: None, Weight: 1, Resize Mode: Crop and Resize, Low Vram: True, Processor Res: 512, Guidance Start: 0, Guidance End: 1, Pixel Perfect: False, Control Mode: ControlNet is more important", Version: v1.5.2'
        ),
        "source": "a1111",
        "expect": {"prompt": "dog,close up, face portrait", "seed": 1934093539, "model": "v1-5-pruned-emaonly"},
        "not_honoured": ["ControlNet 0", "Model hash", "Sampler (DPM++ 2S a)"],
    },
    "AbyssOrangeMix (variation seed, ENSD, blank line in the prompt)": {
        "origin": "Hugging Face model card WarriorMama777/OrangeMixs README.md, as mirrored in github.com/Hny0305Lin/fork_orangemix README.md (commit b0a6830c, lines 918-923)",
        "text": (
            "((masterpiece)), best quality, perfect anatomy, (1girl, solo focus:1.4), pov, looking at viewer, flower trim,(perspective, sideway, From directly above ,lying on water, open hand, palm, :1.3),(Accurate five-fingered hands, Reach out, hand focus, foot focus, Sole, heel, ball of the thumb:1.2), (outdoor, sunlight:1.2),(shiny skin:1.3),,(masterpiece, white border, outside border, frame:1.3),\n"
            ", (motherhood, aged up, mature female, medium breasts:1.2), (curvy:1.1), (single side braid:1.2), (long hair with queue and braid, disheveled hair, hair scrunchie, tareme:1.2), (light Ivory hair:1.2), looking at viewer,, Calm, Slight smile,\n"
            ",(anemic, dark, lake, river,puddle, Meadow, rock, stone, moss, cliff, white flower, stalactite, Godray, ruins, ancient, eternal, deep ,mystic background,sunlight,plant,lily,white flowers, Abyss, :1.2), (orange fruits, citrus fruit, citrus fruit bearing tree:1.4), volumetric lighting,good lighting,, masterpiece, best quality, highly detailed,extremely detailed cg unity 8k wallpaper,illustration,((beautiful detailed face)), best quality, (((hyper-detailed ))), high resolution illustration ,high quality, highres, sidelighting, ((illustrationbest)),highres,illustration, absurdres, hyper-detailed, intricate detail, perfect, high detailed eyes,perfect lighting, (extremely detailed CG:1.2),\n"
            "\n"
            "Negative prompt: (bad_prompt_version2:1), distant view, lip, Pregnant, maternity, pointy ears, realistic, tan, muscular, greyscale, monochrome, lineart, 2koma, 3koma, 4koma, manga, 3D, 3Dcubism, pablo picasso, disney, marvel, mutanted breasts, mutanted nipple, cropped, lowres, bad anatomy, bad hands, text, error, missing fingers, extra digit, fewer digits, cropped, worst quality, low quality, normal quality, jpeg artifacts, signature, watermark, username, blurry, artist name, lowres, trademark, watermark, title, text, deformed, bad anatomy, disfigured, mutated, extra limbs, ugly, missing limb, floating limbs, disconnected limbs, out of frame, mutated hands and fingers, poorly drawn hands, malformed hands, poorly drawn face, poorly drawn asymmetrical eyes, (blurry:1.4), duplicate (loli, petite, child, infant, toddlers, chibi, sd character, teen age:1.4), tsurime, helmet hair, evil smile, smug_face, naughty smile, multiple view, Reference sheet, (worst quality, low quality:1.4),\n"
            "Steps: 24, Sampler: DPM++ SDE Karras, CFG scale: 10, Seed: 1159970659, Size: 1536x768, Model hash: cc44dbff, Model: AbyssOrangeMix, Variation seed: 93902374, Variation seed strength: 0.45, Denoising strength: 0.45, ENSD: 31337"
        ),
        "source": "a1111",
        "expect": {
            "seed": 1159970659,
            "scheduler": "dpm++sde-karras",
            "guidance": 10.0,
            "width": 1536,
            "height": 768,
            "model": "AbyssOrangeMix",
            "strength": 0.45,
        },
        "not_honoured": ["ENSD", "Model hash", "Variation seed", "Variation seed strength"],
    },
}

#: Other tools' chunks (PNG text keyword -> text), as their sample images carry them.
CHUNKS: dict[str, dict[str, Any]] = {
    "ComfyUI img2img (API graph)": {
        "origin": "github.com/d3x-at/sd-parsers tests/resources/parsers/ComfyUI/img2img_cropped.png, its `prompt` chunk (ComfyUI's img2img example; the `workflow` chunk not kept)",
        "chunks": {
            "prompt": '{"3": {"inputs": {"seed": 280823642470253, "Random seed after every gen": true, "steps": 20, "cfg": 8.0, "sampler_name": "sample_dpmpp_2m", "scheduler": "normal", "denoise": 0.8700000000000001, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["12", 0]}, "class_type": "KSampler"}, "4": {"inputs": {"config_name": "v1-inference.yaml", "ckpt_name": "v1-5-pruned-emaonly.ckpt"}, "class_type": "CheckpointLoader"}, "6": {"inputs": {"text": "photograph of victorian woman with wings, sky clouds, meadow grass\\n", "clip": ["4", 1]}, "class_type": "CLIPTextEncode"}, "7": {"inputs": {"text": "watermark, text\\n", "clip": ["4", 1]}, "class_type": "CLIPTextEncode"}, "8": {"inputs": {"samples": ["3", 0], "vae": ["4", 2]}, "class_type": "VAEDecode"}, "9": {"inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}, "class_type": "SaveImage"}, "10": {"inputs": {"image": "example.png"}, "class_type": "LoadImage", "is_changed": "a8e215ad32a0052fc4190e9c5863428d5ee35cd98b246243842ba8360511b7c4"}, "12": {"inputs": {"pixels": ["10", 0], "vae": ["4", 2]}, "class_type": "VAEEncode"}}'
        },
        "source": "comfyui",
        "expect": {
            "prompt": "photograph of victorian woman with wings, sky clouds, meadow grass",
            "negative": "watermark, text",
            "seed": 280823642470253,
            "steps": 20,
            "guidance": 8.0,
            "scheduler": "dpm++2m",
            "model": "v1-5-pruned-emaonly.ckpt",
            "strength": 0.8700000000000001,
        },
        "not_honoured": ["LoadImage"],
    },
    "Fooocus 2.4 (JSON in parameters)": {
        "origin": "github.com/d3x-at/sd-parsers tests/resources/parsers/Fooocus/fooocus1_cropped.png, its `parameters` and `fooocus_scheme` chunks",
        "chunks": {
            "parameters": '{"adm_guidance": "(1.5, 0.8, 0.3)", "base_model": "juggernautXL_v8Rundiffusion", "base_model_hash": "aeb7e9e689", "clip_skip": 2, "full_negative_prompt": ["(worst quality, low quality, normal quality, lowres, low details, oversaturated, undersaturated, overexposed, underexposed, grayscale, bw, bad photo, bad photography, bad art:1.4), (watermark, signature, text font, username, error, logo, words, letters, digits, autograph, trademark, name:1.2), (blur, blurry, grainy), morbid, ugly, asymmetrical, mutated malformed, mutilated, poorly lit, bad shadow, draft, cropped, out of frame, cut off, censored, jpeg artifacts, out of focus, glitch, duplicate, (airbrushed, cartoon, anime, semi-realistic, cgi, render, blender, digital art, manga, amateur:1.3), (3D ,3D Game, 3D Game Scene, 3D Character:1.1), (bad hands, bad anatomy, bad body, bad face, bad teeth, bad arms, bad legs, deformities:1.3)", "anime, cartoon, graphic, (blur, blurry, bokeh), text, painting, crayon, graphite, abstract, glitch, deformed, mutated, ugly, disfigured"], "full_prompt": ["cinematic still a smiling goldfish . emotional, harmonious, vignette, 4k epic detailed, shot on kodak, 35mm photo, sharp focus, high budget, cinemascope, moody, epic, gorgeous, film grain, grainy", "a smiling goldfish, deep focus, intricate, elegant, highly detailed, cinematic, still, dynamic background, professional fine composition, ambient light, magic, vivid colors, creative, positive, attractive, glossy, shiny, colorful, strong, sharp, heroic, awesome, determined, cute, epic, stunning, gorgeous, amazing, symmetry, great, perfect, excellent, complex"], "guidance_scale": 4, "loras": [], "metadata_scheme": "fooocus", "negative_prompt": "", "performance": "Speed", "prompt": "a smiling goldfish", "prompt_expansion": "a smiling goldfish, deep focus, intricate, elegant, highly detailed, cinematic, still, dynamic background, professional fine composition, ambient light, magic, vivid colors, creative, positive, attractive, glossy, shiny, colorful, strong, sharp, heroic, awesome, determined, cute, epic, stunning, gorgeous, amazing, symmetry, great, perfect, excellent, complex", "refiner_model": "None", "refiner_switch": 0.5, "resolution": "(768, 1280)", "sampler": "dpmpp_2m_sde_gpu", "scheduler": "karras", "seed": "6952411511246973023", "sharpness": 2, "steps": 30, "styles": "[\'Fooocus V2\', \'Fooocus Enhance\', \'Fooocus Sharp\']", "vae": "Default (model)", "version": "Fooocus v2.4.3"}',
            "fooocus_scheme": "fooocus",
        },
        "source": "fooocus",
        "expect": {
            "prompt": "a smiling goldfish",
            "seed": 6952411511246973023,
            "steps": 30,
            "guidance": 4.0,
            "width": 768,
            "height": 1280,
            "scheduler": "dpm++2m-sde-karras",
            "model": "juggernautXL_v8Rundiffusion",
            "clip_skip": 1,
        },
        "not_honoured": None,
    },
    "InvokeAI 3 (invokeai_metadata)": {
        "origin": "github.com/d3x-at/sd-parsers tests/resources/parsers/InvokeAI/invokeai_imeta1.png, its `invokeai_metadata` chunk",
        "chunks": {
            "invokeai_metadata": '{"generation_mode":"sdxl_txt2img","positive_prompt":"digital artwork, oil painting. painterly brushstrokes, holidays,","negative_prompt":"grainy+, photo, oversaturated, overexposed, blurry, compressed jpg+, noisy++, unfocused , black and white","width":1024,"height":1024,"seed":3293022630,"rand_device":"cpu","cfg_scale":8.0,"cfg_rescale_multiplier":0.0,"steps":35,"scheduler":"euler","model":{"model_name":"juggernautXL","base_model":"sdxl","model_type":"main"},"ipAdapters":[{"image":{"image_name":"21b3ddb9-089b-49fd-b074-0b9fdac3ab3e.png"},"ip_adapter_model":{"model_name":"ip-adapter-plus_sdxl_vit-h","base_model":"sdxl"},"weight":0.45,"begin_step_percent":0.0,"end_step_percent":1.0}],"vae":{"model_name":"VAEFix","base_model":"sdxl"},"positive_style_prompt":"","negative_style_prompt":""}'
        },
        "source": "invokeai",
        "expect": {
            "prompt": "digital artwork, oil painting. painterly brushstrokes, holidays,",
            "seed": 3293022630,
            "steps": 35,
            "guidance": 8.0,
            "width": 1024,
            "height": 1024,
            "scheduler": "euler",
            "model": "juggernautXL",
        },
        "not_honoured": ["ipAdapters", "vae"],
    },
    "InvokeAI 2.3 (sd-metadata + Dream)": {
        "origin": "github.com/d3x-at/sd-parsers tests/resources/parsers/InvokeAI/invokeai_sdmeta1.png, its `Dream` and `sd-metadata` chunks",
        "chunks": {
            "Dream": '"professional full body photo of young woman, hyper long brunette hair, elegant hair, wearing a bikini top and asymmetric short skirt, curvy body, long legs, (imperfect skin), detailed skin, intense freckles, super long eye lashes, at night, outside, city background, 8k ultra detailed, realistic, high quality, film grain, low contrast [rendering, glowing eyes, skinny]" -s 50 -S 2980747362 -W 512 -H 768 -C 5 -A k_lms -G 0.9 -cf 0.75 -U 4 0.95',
            "sd-metadata": '{"model": "stable diffusion", "model_weights": "deliberateForInvoke_v08", "model_hash": "56d1442a0feefd64836a19ac8e3527ec71c884fc962e246ddf67b03e42921272", "app_id": "invoke-ai/InvokeAI", "app_version": "2.3.0", "image": {"prompt": [{"prompt": "professional full body photo of young woman, hyper long brunette hair, elegant hair, wearing a bikini top and asymmetric short skirt, curvy body, long legs, (imperfect skin), detailed skin, intense freckles, super long eye lashes, at night, outside, city background, 8k ultra detailed, realistic, high quality, film grain, low contrast [rendering, glowing eyes, skinny]", "weight": 1.0}], "steps": 50, "cfg_scale": 5, "threshold": 0, "perlin": 0, "height": 768, "width": 512, "seed": 2980747362, "seamless": false, "hires_fix": false, "type": "txt2img", "postprocessing": [{"type": "codeformer", "strength": 0.9, "fidelity": 0.75}, {"type": "esrgan", "scale": 4, "strength": 0.95}], "sampler": "k_lms", "variations": []}}',
        },
        "source": "invokeai",
        "expect": {
            "negative": "rendering, glowing eyes, skinny",
            "seed": 2980747362,
            "steps": 50,
            "guidance": 5.0,
            "width": 512,
            "height": 768,
            "scheduler": "lms",
            "model": "deliberateForInvoke_v08",
        },
        "not_honoured": None,
    },
    "InvokeAI 2 (Dream only)": {
        "origin": "github.com/d3x-at/sd-parsers tests/resources/parsers/InvokeAI/invokeai_dream1.png, its `Dream` chunk",
        "chunks": {
            "Dream": '"professional full body photo of young woman, hyper long brunette hair, elegant hair, wearing a bikini top and asymmetric short skirt, curvy body, long legs, (imperfect skin), detailed skin, intense freckles, super long eye lashes, at night, outside, city background, 8k ultra detailed, realistic, high quality, film grain, low contrast [rendering, glowing eyes, skinny]" -s 50 -S 2980747362 -W 512 -H 768 -C 5 -A k_lms -G 0.9 -cf 0.75 -U 4 0.95'
        },
        "source": "invokeai",
        "expect": {
            "negative": "rendering, glowing eyes, skinny",
            "seed": 2980747362,
            "steps": 50,
            "guidance": 5.0,
            "width": 512,
            "height": 768,
            "scheduler": "lms",
        },
        "not_honoured": ["-G", "-U", "-cf"],
    },
    "NovelAI (Comment + Description + Source)": {
        "origin": "github.com/d3x-at/sd-parsers tests/resources/parsers/NovelAI/novelai1_cropped.png, its five text chunks",
        "chunks": {
            "Title": "AI generated image",
            "Description": "masterpiece, best quality,  cat, space, icon",
            "Software": "NovelAI",
            "Source": "Stable Diffusion 1D44365E",
            "Comment": '{"steps": 50, "sampler": "k_euler_ancestral", "seed": 2253955223, "strength": 0.4, "noise": 0.0, "scale": 10.0, "uc": "lowres, bad anatomy, bad hands, text, error, missing fingers, extra digit, fewer digits, cropped, worst quality, low quality, normal quality, jpeg artifacts, signature, watermark, username, blurry, lowres, bad anatomy, bad hands, text, error, missing fingers, extra digit, fewer digits, cropped, worst quality, low quality, normal quality, jpeg artifacts, signature, watermark, username, blurry"}',
        },
        "source": "novelai",
        "expect": {
            "prompt": "masterpiece, best quality,  cat, space, icon",
            "seed": 2253955223,
            "steps": 50,
            "guidance": 10.0,
            "scheduler": "euler-a",
            "model": "Stable Diffusion 1D44365E",
        },
        "not_honoured": [],
    },
}
